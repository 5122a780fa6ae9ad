/**
 * @file What zero-shot retrieval writes under runs/<runId>/results/retrieval/: metrics.json
 * (recall@k both ways, the counts, per-image and per-caption ranks, and the inputs hash a resumed
 * run compares) and clip-benchmark.json (CLIP_benchmark's layout, task `zeroshot_retrieval`).
 */
import { keys } from '../../storage/keys';
import type { ObjectStore } from '../../storage/object-store';

/** What the workflow gets back: small, the headline recalls and where the rest is. */
export interface RetrievalSummary {
  /** Image to text recall@k (CLIP_benchmark's text_retrieval_recall@k), by k. */
  imageToText: Record<string, number>;
  /** Text to image recall@k (CLIP_benchmark's image_retrieval_recall@k), by k. */
  textToImage: Record<string, number>;
  /** Test images ranked (each with at least one caption). */
  images: number;
  /** Their captions. */
  captions: number;
  /** Anything a reader must know to trust the figures (images left out, and why). */
  notes: string[];
  metricsUri: string;
  /** True when an earlier execution of this run had already produced this exact result. */
  reused?: boolean;
}

export interface RetrievalResultFile {
  summary: RetrievalSummary;
  inputsHash: string;
  metrics: {
    k: number[];
    imageToText: Record<string, number>;
    textToImage: Record<string, number>;
    images: number;
    captions: number;
  };
  details: {
    /** The ranked images' URIs, in rank-array order. */
    images: string[];
    /** Per image: captions ranked before its best caption (a hit at k when below k). */
    imageRanks: number[];
    /** Per caption: its image, an index into `images`. */
    captionImage: number[];
    /** Per caption: images ranked before its own. */
    captionRanks: number[];
    /** The caption blocks (s3:// URIs) and how many were read back instead of encoded. */
    captionBlocks: string[];
    captionBlocksReused: number;
    /** Test images with captions that have no embedding (failed to decode): left out. */
    imagesLeftOut: number;
  };
}

/** CLIP_benchmark's result JSON for zeroshot_retrieval: its metric names, fractions in [0, 1]. */
export function clipBenchmarkRetrieval(input: {
  dataset: string;
  model: string;
  pretrained: string;
  imageToText: Record<string, number>;
  textToImage: Record<string, number>;
}) {
  const metrics: Record<string, number> = {};
  for (const k of Object.keys(input.textToImage))
    metrics[`image_retrieval_recall@${k}`] = input.textToImage[k]!;
  for (const k of Object.keys(input.imageToText))
    metrics[`text_retrieval_recall@${k}`] = input.imageToText[k]!;
  return {
    dataset: input.dataset,
    model: input.model,
    pretrained: input.pretrained,
    task: 'zeroshot_retrieval',
    metrics,
    language: 'en',
  };
}

/** Writes clip-benchmark.json, then metrics.json (its presence means the result is complete). */
export async function writeRetrievalResult(
  deps: { store: ObjectStore },
  runId: string,
  provenance: { dataset: string; model: string; pretrained: string },
  file: Omit<RetrievalResultFile, 'summary'> & { notes: string[] },
): Promise<RetrievalSummary> {
  const { store } = deps;
  const { metrics } = file;
  await store.putJson(
    keys.retrievalResult(runId, 'clip-benchmark.json'),
    clipBenchmarkRetrieval({ ...provenance, ...metrics }),
  );
  const key = keys.retrievalResult(runId, 'metrics.json');
  const summary: RetrievalSummary = {
    imageToText: metrics.imageToText,
    textToImage: metrics.textToImage,
    images: metrics.images,
    captions: metrics.captions,
    notes: file.notes,
    metricsUri: store.uri(key),
  };
  const out: RetrievalResultFile = {
    summary,
    inputsHash: file.inputsHash,
    metrics,
    details: file.details,
  };
  await store.putJson(
    key,
    out,
    `The ranks of ${metrics.images} images and ${metrics.captions} captions do not fit in one JSON file: split the dataset into several runs.`,
  );
  return summary;
}

/** The result an earlier execution wrote for exactly these inputs, if any (resume reuses it). */
export async function findRetrievalResult(
  deps: { store: ObjectStore },
  runId: string,
  inputsHash: string,
): Promise<RetrievalSummary | undefined> {
  const file = await deps.store.getJson<RetrievalResultFile>(
    keys.retrievalResult(runId, 'metrics.json'),
  );
  return file?.inputsHash === inputsHash ? { ...file.summary, reused: true } : undefined;
}
