/**
 * Byte-pair merging in the order of tokenizers' `Word::merge_all`: always the adjacent pair with
 * the lowest merge rank, the leftmost on ties, until no adjacent pair has a rank. A heap of
 * candidate pairs keeps it O(n log n), since one "word" can be a whole paragraph (CJK text has
 * no spaces); rescanning for the best pair after every merge would be quadratic.
 */
export function mergeSymbols(
  symbols: readonly string[],
  rankOf: (left: string, right: string) => number | undefined,
): string[] {
  const n = symbols.length;
  const sym = [...symbols]; // '' marks a symbol merged into its left neighbour
  const next = Int32Array.from({ length: n }, (_, i) => i + 1); // n: none
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1); // -1: none
  const heap = new MinHeap();
  // Heap keys order by rank, then position: rank * 2^32 + position.
  const POS = 2 ** 32;
  const queuePairAt = (i: number) => {
    const j = next[i]!;
    const rank = j < n ? rankOf(sym[i]!, sym[j]!) : undefined;
    if (rank !== undefined) heap.push(rank * POS + i);
  };

  for (let i = 0; i < n - 1; i++) queuePairAt(i);
  while (heap.size > 0) {
    const key = heap.pop();
    const i = key % POS;
    const j = next[i]!;
    // Skip entries that went stale: the left symbol was merged away, or either side has grown.
    if (sym[i] === '' || j >= n || rankOf(sym[i]!, sym[j]!) !== Math.floor(key / POS)) continue;
    sym[i] += sym[j]!;
    sym[j] = '';
    const after = next[j]!;
    next[i] = after;
    if (after < n) prev[after] = i;
    if (prev[i]! >= 0) queuePairAt(prev[i]!);
    queuePairAt(i);
  }
  return sym.filter((s) => s !== '');
}

/** A binary min-heap of numbers. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const a = this.items;
    let i = a.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= value) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = value;
  }

  /** Removes and returns the smallest value; the heap must not be empty. */
  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length === 0) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= a.length) break;
      if (child + 1 < a.length && a[child + 1]! < a[child]!) child++;
      if (a[child]! >= last) break;
      a[i] = a[child]!;
      i = child;
    }
    a[i] = last;
    return top;
  }
}
