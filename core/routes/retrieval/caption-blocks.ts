/**
 * @file Caption embeddings, stored like image shards: content-addressed Arrow blocks of up to
 * CAPTION_BLOCK captions under captions/<text space>/<hash of the block's texts>.arrow
 * (core/storage/keys.ts), so a rerun, a resumed run or another run over the same captions and
 * model reads them instead of encoding again. Captions are encoded as given, no templates
 * (CLIP_benchmark's retrieval), and L2-normalised by the encoder.
 */
import { Schema, Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import { embeddingSpace, preprocessFingerprint } from '../../embeddings/shard-key';
import type { ModelBundle } from '../../model/bundle';
import { contentHash } from '../../storage/content-hash';
import { matrixColumn, readFloatMatrix, requiredColumn } from '../../storage/arrow-columns';
import { keys } from '../../storage/keys';
import type { ObjectStore } from '../../storage/object-store';
import type { WorkerResources } from '../../worker-resources';

/** Captions per block: a few MB of embeddings at dim 512, one PutObject. */
export const CAPTION_BLOCK = 2048;

export interface CaptionBlock {
  texts: string[];
  /** [texts, dim], L2-normalised rows. */
  embeddings: Float32Array;
  dim: number;
  bundleHash: string;
}

export function encodeCaptionBlock(b: CaptionBlock): Uint8Array {
  const table = new Table({
    text: vectorFromArray(b.texts, new Utf8()),
    embedding: matrixColumn(b.embeddings, b.dim),
  });
  const metadata = new Map([['clipeval.bundle_hash', b.bundleHash]]);
  return tableToIPC(new Table(new Schema(table.schema.fields, metadata), table.batches), 'file');
}

export function decodeCaptionBlock(bytes: Uint8Array): CaptionBlock {
  const table = tableFromIPC(bytes);
  const texts = Array.from(requiredColumn(table, 'text', 'caption block').toArray() as string[]);
  const { values, dim } = readFloatMatrix(table, 'embedding', 'caption block');
  return {
    texts,
    embeddings: values,
    dim,
    bundleHash: table.schema.metadata.get('clipeval.bundle_hash') ?? '',
  };
}

/**
 * The block's key. The space is the bundle's default one, as for zero-shot prototypes: the text
 * tower is touched by neither the preprocessing mode nor the image graph.
 */
export function captionBlockKey(bundle: ModelBundle, texts: readonly string[]): string {
  const space = embeddingSpace(bundle.hash, preprocessFingerprint(bundle.manifest.preprocessing));
  return keys.captionEmbeddings(space, contentHash(texts).slice(0, 32));
}

export interface CaptionEmbeddings {
  /** [captions, dim], in the order given. */
  embeddings: Float32Array;
  /** Every block's key, in order. */
  blocks: string[];
  /** Blocks read back instead of encoded. */
  reused: number;
}

/** The embeddings of `texts`, block by block: read where stored (same texts, same bundle), else encoded and stored. */
export async function captionEmbeddings(
  deps: { store: ObjectStore; resources: Pick<WorkerResources, 'textEncoder' | 'tokenizer'> },
  bundle: ModelBundle,
  texts: readonly string[],
  opts: { batchSize: number; onProgress?: (done: number) => void; signal?: AbortSignal },
): Promise<CaptionEmbeddings> {
  const dim = bundle.manifest.architecture.embedDim;
  const embeddings = new Float32Array(texts.length * dim);
  const blocks: string[] = [];
  let reused = 0;
  for (let start = 0; start < texts.length; start += CAPTION_BLOCK) {
    opts.signal?.throwIfAborted();
    const block = texts.slice(start, start + CAPTION_BLOCK);
    const key = captionBlockKey(bundle, block);
    blocks.push(key);
    const stored = await deps.store.getBytes(key);
    const earlier = stored ? decodeCaptionBlock(stored) : undefined;
    // A block is reused only if it holds exactly these texts from this bundle.
    if (earlier && matches(earlier, block, bundle.hash, dim)) {
      embeddings.set(earlier.embeddings, start * dim);
      reused++;
    } else {
      const onBatch = (done: number) => opts.onProgress?.(start + done);
      const encoded = await encodeTexts(deps, bundle, block, onBatch, opts);
      embeddings.set(encoded, start * dim);
      await deps.store.putBytes(
        key,
        encodeCaptionBlock({ texts: block, embeddings: encoded, dim, bundleHash: bundle.hash }),
      );
    }
    opts.onProgress?.(start + block.length);
  }
  return { embeddings, blocks, reused };
}

function matches(b: CaptionBlock, texts: readonly string[], bundleHash: string, dim: number) {
  return (
    b.bundleHash === bundleHash &&
    b.dim === dim &&
    b.texts.length === texts.length &&
    b.texts.every((t, i) => t === texts[i])
  );
}

/** The text tower on `texts`, batchSize at a time: L2-normalised rows. */
async function encodeTexts(
  deps: { resources: Pick<WorkerResources, 'textEncoder' | 'tokenizer'> },
  bundle: ModelBundle,
  texts: readonly string[],
  onProgress: (done: number) => void,
  opts: { batchSize: number; signal?: AbortSignal },
): Promise<Float32Array> {
  const [encoder, tokenizer] = await Promise.all([
    deps.resources.textEncoder(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const dim = bundle.manifest.architecture.embedDim;
  const out = new Float32Array(texts.length * dim);
  for (let start = 0; start < texts.length; start += opts.batchSize) {
    opts.signal?.throwIfAborted();
    const batch = texts.slice(start, start + opts.batchSize);
    const tokens = tokenizer.encodeBatch(batch);
    out.set(await encoder.encode(tokens.ids, tokens.shape), start * dim);
    onProgress(start + batch.length);
  }
  return out;
}
