import type { Split } from '../dataset/types';
import type { ObjectStore } from '../storage/object-store';
import { PermanentError } from '../util/errors';
import { decodeShard, type ShardMetadata, type ShardRow } from './shard-format';
import { DEFAULT_SPACE_CHOICE, type SpaceChoice } from './shard-key';

/** Embeddings of one shard (or a concatenation), row-major [rows, dim], with their labels. */
export interface EmbeddingMatrix {
  embeddings: Float32Array;
  dim: number;
  rows: ShardRow[];
}

export class EmbeddingSpaceError extends PermanentError {
  override readonly name = 'EmbeddingSpaceError';
}

/** What a run's shards must have been made with besides its bundle (core/embeddings/shard-key.ts). */
export interface ExpectedSpace extends SpaceChoice {
  preprocessFingerprint: string;
}

/**
 * A shard's preprocessing (fingerprint and mode) and image graph must be the run's. Shards from
 * before modes and graphs existed carry neither: they are exact / fp32.
 */
function checkSpace(uri: string, meta: ShardMetadata, want: ExpectedSpace): void {
  const got = {
    preprocessFingerprint: meta.preprocessFingerprint,
    preprocessing: meta.preprocessing || DEFAULT_SPACE_CHOICE.preprocessing,
    imageGraph: meta.imageGraph || DEFAULT_SPACE_CHOICE.imageGraph,
  };
  for (const field of ['preprocessFingerprint', 'preprocessing', 'imageGraph'] as const) {
    if (got[field] !== want[field])
      throw new EmbeddingSpaceError(
        `Shard ${uri} was encoded with ${field} ${got[field]}, not ${want[field]}: embeddings from different preprocessing or image graphs cannot be mixed.`,
      );
  }
}

/**
 * Streams the shards of a run one at a time (never the whole dataset at once), keeping the rows
 * of the requested split and view. Every shard must come from the expected bundle: mixing
 * embedding spaces would silently compare vectors that mean different things.
 */
export async function* readShards(
  store: ObjectStore,
  shardKeys: readonly string[],
  opts: { bundleHash: string; space?: ExpectedSpace; split?: Split; view?: number },
): AsyncGenerator<EmbeddingMatrix & { metadata: ShardMetadata }> {
  for (const key of shardKeys) {
    const shard = decodeShard(await store.requireBytes(key));
    if (shard.metadata.bundleHash !== opts.bundleHash) {
      throw new EmbeddingSpaceError(
        `Shard ${store.uri(key)} was encoded with bundle ${shard.metadata.bundleHash.slice(0, 16)}, not ${opts.bundleHash.slice(0, 16)}: embeddings from different models cannot be mixed.`,
      );
    }
    if (opts.space) checkSpace(store.uri(key), shard.metadata, opts.space);
    const keep = shard.rows.flatMap((row, i) =>
      (opts.split === undefined || row.split === opts.split) &&
      (opts.view === undefined || row.view === opts.view)
        ? [i]
        : [],
    );
    const embeddings = new Float32Array(keep.length * shard.dim);
    keep.forEach((i, j) =>
      embeddings.set(shard.embeddings.subarray(i * shard.dim, (i + 1) * shard.dim), j * shard.dim),
    );
    yield {
      embeddings,
      dim: shard.dim,
      rows: keep.map((i) => shard.rows[i]!),
      metadata: shard.metadata,
    };
  }
}

/** All rows of a split (and view) as one matrix: what the heads train and evaluate on. */
export async function readMatrix(
  store: ObjectStore,
  shardKeys: readonly string[],
  opts: { bundleHash: string; space?: ExpectedSpace; split?: Split; view?: number },
): Promise<EmbeddingMatrix> {
  const parts: EmbeddingMatrix[] = [];
  for await (const part of readShards(store, shardKeys, opts)) parts.push(part);
  const dim = parts[0]?.dim ?? 0;
  const embeddings = new Float32Array(parts.reduce((n, p) => n + p.embeddings.length, 0));
  parts.reduce((at, p) => (embeddings.set(p.embeddings, at), at + p.embeddings.length), 0);
  return { embeddings, dim, rows: parts.flatMap((p) => p.rows) };
}
