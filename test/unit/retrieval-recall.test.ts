import { describe, expect, it } from 'vitest';
import { BLOCK, retrievalRecall } from '../../core/routes/retrieval/recall';
import { l2NormalizeRows } from '../../core/util/vectors';
import { runPythonJson } from '../helpers/python';

// CLIP_benchmark's recall_at_k (clip_benchmark/metrics/zeroshot_retrieval.py), ported line by
// line from torch to numpy: topk over dim 1 (a stable argsort of -scores: lower index first among
// ties), one-hot of the top k, true positives over positives per row, then (recall > 0).mean().
const CLIP_BENCHMARK_RECALL = String.raw`
import json, sys
import numpy as np
d = json.load(sys.stdin)
dim = d['dim']
images_emb = np.array(d['images'], dtype=np.float32).reshape(-1, dim)
texts_emb = np.array(d['texts'], dtype=np.float32).reshape(-1, dim)
texts_image_index = d['captionImage']
scores = texts_emb @ images_emb.T
positive_pairs = np.zeros_like(scores, dtype=bool)
positive_pairs[np.arange(len(scores)), texts_image_index] = True

def recall_at_k(scores, positive_pairs, k):
    nb_texts, nb_images = scores.shape
    topk_indices = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    nb_positive = positive_pairs.sum(axis=1)
    topk_indices_onehot = np.eye(nb_images, dtype=np.int64)[topk_indices]
    positive_pairs_reshaped = positive_pairs.reshape(nb_texts, 1, nb_images)
    nb_true_positive = (topk_indices_onehot * positive_pairs_reshaped).sum(axis=(1, 2))
    return nb_true_positive / nb_positive

out = {'image_retrieval': {}, 'text_retrieval': {}}
for k in d['ks']:
    out['image_retrieval'][str(k)] = float((recall_at_k(scores, positive_pairs, k) > 0).mean())
    out['text_retrieval'][str(k)] = float((recall_at_k(scores.T, positive_pairs.T, k) > 0).mean())
print(json.dumps(out))
`;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}
const gauss = (r: () => number) =>
  Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

/** Images, and 1 to 5 captions each near their image (noise `noise`), L2-normalised. */
function fixture(nImages: number, dim: number, noise: number, seed: number) {
  const r = rng(seed);
  const images = new Float32Array(nImages * dim).map(() => gauss(r));
  const captionImage: number[] = [];
  const texts: number[] = [];
  for (let i = 0; i < nImages; i++) {
    const n = 1 + Math.floor(r() * 5);
    for (let c = 0; c < n; c++) {
      captionImage.push(i);
      for (let d = 0; d < dim; d++) texts.push(images[i * dim + d]! + noise * gauss(r));
    }
  }
  // Captions in shuffled order: a caption's image is not its position's.
  const order = captionImage.map((_, t) => t).sort(() => r() - 0.5);
  const shuffled = new Float32Array(texts.length);
  order.forEach((t, j) => shuffled.set(texts.slice(t * dim, (t + 1) * dim), j * dim));
  return {
    images: l2NormalizeRows(images, dim),
    texts: l2NormalizeRows(shuffled, dim),
    captionImage: Int32Array.from(order, (t) => captionImage[t]!),
    dim,
  };
}

describe('zero-shot retrieval recall@k', () => {
  it.each([
    { nImages: 150, dim: 16, noise: 1.6, seed: 3 },
    { nImages: BLOCK * 2, dim: 24, noise: 2.2, seed: 11 },
    { nImages: 37, dim: 8, noise: 0.9, seed: 5 },
  ])(
    'equals a numpy port of CLIP_benchmark on random embeddings ($nImages images, dim $dim)',
    async ({ nImages, dim, noise, seed }) => {
      const f = fixture(nImages, dim, noise, seed);
      const ks = [1, 5, 10];
      const ours = await retrievalRecall({ ...f, ks });
      const ref = runPythonJson(CLIP_BENCHMARK_RECALL, {
        images: Array.from(f.images),
        texts: Array.from(f.texts),
        captionImage: Array.from(f.captionImage),
        dim,
        ks,
      }) as { image_retrieval: Record<string, number>; text_retrieval: Record<string, number> };
      // Exact: hits are counts over the same float32 scores (random data has no near-ties at
      // float32 rounding), so the means agree to the last bit.
      expect(ours.textToImage).toEqual(ref.image_retrieval);
      expect(ours.imageToText).toEqual(ref.text_retrieval);
      // Not a degenerate fixture: the task is neither solved nor hopeless at k=1.
      for (const v of [ours.textToImage['1']!, ours.imageToText['1']!]) {
        expect(v).toBeGreaterThan(0.05);
        expect(v).toBeLessThan(0.95);
      }
    },
  );

  it('breaks ties by the lower index, as a stable sort would', async () => {
    // Images 0 and 1 are the same vector; caption 0 is image 1's, caption 1 image 0's.
    const images = new Float32Array([1, 0, 1, 0, 0, 1]);
    const texts = new Float32Array([1, 0, 1, 0, 0, 1]);
    const captionImage = Int32Array.from([1, 0, 2]);
    const r = await retrievalRecall({ images, texts, dim: 2, captionImage, ks: [1, 2] });
    // Text to image: caption 0's image (1) ties with image 0, which ranks first: a miss at 1.
    expect(Array.from(r.captionRanks)).toEqual([1, 0, 0]);
    expect(r.textToImage).toEqual({ '1': 2 / 3, '2': 1 });
    // Image to text: image 0's caption (1) ties with caption 0 (image 1's), which ranks first.
    expect(Array.from(r.imageRanks)).toEqual([1, 0, 0]);
    expect(r.imageToText).toEqual({ '1': 2 / 3, '2': 1 });
  });

  it('refuses an image without captions', async () => {
    const images = new Float32Array([1, 0, 0, 1]);
    await expect(
      retrievalRecall({
        images,
        texts: new Float32Array([1, 0]),
        dim: 2,
        captionImage: Int32Array.from([0]),
        ks: [1],
      }),
    ).rejects.toThrow(/image 1 has no caption/);
  });
});
