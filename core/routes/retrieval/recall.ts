/**
 * @file Zero-shot retrieval recall@k as CLIP_benchmark defines it
 * (clip_benchmark/metrics/zeroshot_retrieval.py), computed without the [captions, images]
 * similarity matrix: images are scored in blocks of BLOCK rows against every caption, and each
 * block only updates per-row counts.
 *
 * CLIP_benchmark: scores = texts @ images.T; a caption is a text-to-image hit at k when its image
 * is in its top k (image_retrieval_recall@k), an image an image-to-text hit when ANY of its
 * captions is in its top k (text_retrieval_recall@k); each recall is the mean of hits.
 *
 * Ranking rule (ties): candidates are ordered by score, highest first, and among equal scores by
 * index, lowest first (as core/routes/metrics.ts ranks classes). Under that total order "a
 * positive is in the top k" is "fewer than k candidates come before the best-ranked positive",
 * so a row needs one count, not a top-k list: for a caption, the images ahead of its image; for
 * an image, the captions ahead of its best caption (highest score, lowest index among ties).
 * torch.topk leaves ties unspecified, so with exact ties CLIP_benchmark may pick either.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** Images scored against all captions at a time: a block's scores are BLOCK x captions floats. */
export const BLOCK = 64;

export interface RecallInput {
  /** [images, dim], L2-normalised rows. */
  images: Float32Array;
  /** [captions, dim], L2-normalised rows. */
  texts: Float32Array;
  dim: number;
  /** The image each caption describes (an index into `images`); every image has at least one. */
  captionImage: Int32Array;
  ks: readonly number[];
}

export interface RecallResult {
  /** Image to text (CLIP_benchmark's text_retrieval_recall@k), by k. */
  imageToText: Record<string, number>;
  /** Text to image (CLIP_benchmark's image_retrieval_recall@k), by k. */
  textToImage: Record<string, number>;
  /** Per image: captions ranked before its best caption (0 = a caption of its own is first). */
  imageRanks: Int32Array;
  /** Per caption: images ranked before its own image. */
  captionRanks: Int32Array;
}

function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d + 4 <= dim; d += 4) {
    s0 += a[ai + d]! * b[bi + d]!;
    s1 += a[ai + d + 1]! * b[bi + d + 1]!;
    s2 += a[ai + d + 2]! * b[bi + d + 2]!;
    s3 += a[ai + d + 3]! * b[bi + d + 3]!;
  }
  for (; d < dim; d++) s0 += a[ai + d]! * b[bi + d]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * Recall@k both ways. `onBlock` hears the images scored so far after every block (heartbeats);
 * the loop yields to the event loop between blocks.
 */
export async function retrievalRecall(
  input: RecallInput,
  opts: { onBlock?: (imagesDone: number) => void; signal?: AbortSignal } = {},
): Promise<RecallResult> {
  const { images, texts, dim, captionImage, ks } = input;
  const nImages = images.length / dim;
  const nTexts = texts.length / dim;
  // The positives' own scores, with the same dot product the blocks use (bit-identical).
  const ownScore = new Float32Array(nTexts);
  const bestScore = new Float32Array(nImages).fill(-Infinity);
  const bestCaption = new Int32Array(nImages).fill(-1);
  for (let t = 0; t < nTexts; t++) {
    const i = captionImage[t]!;
    const s = Math.fround(dot(texts, t * dim, images, i * dim, dim));
    ownScore[t] = s;
    // Captions visited in index order: a tie keeps the lower index.
    if (s > bestScore[i]!) {
      bestScore[i] = s;
      bestCaption[i] = t;
    }
  }
  const missing = bestCaption.indexOf(-1);
  if (missing >= 0) throw new Error(`retrievalRecall: image ${missing} has no caption`);

  const captionRanks = new Int32Array(nTexts);
  const imageRanks = new Int32Array(nImages);
  for (let start = 0; start < nImages; start += BLOCK) {
    opts.signal?.throwIfAborted();
    const end = Math.min(nImages, start + BLOCK);
    // Captions outside, the block's images inside: each caption row is read once per block
    // while the block's image rows stay in cache (the captions do not fit in it).
    for (let t = 0; t < nTexts; t++) {
      const own = ownScore[t]!;
      const image = captionImage[t]!;
      let ahead = 0;
      for (let i = start; i < end; i++) {
        const s = Math.fround(dot(images, i * dim, texts, t * dim, dim));
        const best = bestScore[i]!;
        if (s > best || (s === best && t < bestCaption[i]!)) imageRanks[i]!++;
        if (s > own || (s === own && i < image)) ahead++;
      }
      captionRanks[t]! += ahead;
    }
    opts.onBlock?.(end);
    if (end < nImages) await yieldToEventLoop();
  }
  return {
    imageToText: recallAt(imageRanks, ks),
    textToImage: recallAt(captionRanks, ks),
    imageRanks,
    captionRanks,
  };
}

/** The share of rows with fewer than k candidates ahead of their positive, per k. */
export function recallAt(ranks: Int32Array, ks: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ks) {
    let hits = 0;
    for (const r of ranks) if (r < k) hits++;
    out[String(k)] = ranks.length === 0 ? 0 : hits / ranks.length;
  }
  return out;
}
