/**
 * @file One dataset's test image keys, interned: each cell's predictions become ids into one
 * table instead of their own copies of every key string. A leaderboard reads 100 models' results
 * for a dataset at once, each route job keyed by every test image (about 80 bytes a key): as
 * strings that is hundreds of MB for 10,000 images; as ids, 4 bytes an image.
 */
export class ImageKeyTable {
  private readonly idOf = new Map<string, number>();
  private readonly keys: string[] = [];

  /** The ids of `keys`, adding the keys not seen before. */
  intern(keys: readonly string[]): Uint32Array {
    const ids = new Uint32Array(keys.length);
    keys.forEach((key, i) => {
      let id = this.idOf.get(key);
      if (id === undefined) {
        id = this.keys.length;
        this.keys.push(key);
        this.idOf.set(key, id);
      }
      ids[i] = id;
    });
    return ids;
  }

  get size(): number {
    return this.keys.length;
  }

  /**
   * Each id's rank in key order: the one image order every interval resamples in, so a cell's
   * interval does not depend on the row order of its predictions file, nor on which cell was
   * read first.
   */
  keyOrder(): Uint32Array {
    const byKey = [...this.keys.keys()].sort((a, b) =>
      this.keys[a]! < this.keys[b]! ? -1 : this.keys[a]! > this.keys[b]! ? 1 : 0,
    );
    const rank = new Uint32Array(this.keys.length);
    byKey.forEach((id, r) => (rank[id] = r));
    return rank;
  }
}
