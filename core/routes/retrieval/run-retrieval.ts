/**
 * @file Zero-shot retrieval (CLIP_benchmark's zeroshot_retrieval): the test split's captioned
 * images, embedded once in the run's shards, against every caption of theirs, encoded without
 * templates into content-addressed caption blocks (./caption-blocks.ts); recall@k image to text
 * and text to image, computed in blocks without the full similarity matrix (./recall.ts). A
 * resumed run reuses its result, a rerun the caption blocks.
 *
 * The images ranked are the test split's images that have captions and an embedding: an image
 * that failed to decode is left out with its captions (counted in the notes), since neither side
 * could be ranked fairly with it.
 */
import { type CaptionsFile, captionsHash } from '../../dataset/captions';
import { PlanError } from '../../dataset/plan';
import { planShardKeys } from '../../embeddings/shard-key';
import { contentHash } from '../../storage/content-hash';
import { keys } from '../../storage/keys';
import { l2NormalizeRows } from '../../util/vectors';
import type { RunHooks } from '../route-hooks';
import { type RouteDeps, type RouteInput, loadRouteInputs } from '../route-inputs';
import { captionEmbeddings } from './caption-blocks';
import { retrievalRecall } from './recall';
import {
  type RetrievalSummary,
  findRetrievalResult,
  writeRetrievalResult,
} from './retrieval-result';

/** Heartbeat details: captions encoded (or read) so far, then images ranked. */
export type RetrievalProgress =
  | { stage: 'captions'; captionsDone: number; captions: number }
  | { stage: 'ranking'; imagesDone: number; images: number };

export async function runRetrieval(
  deps: RouteDeps,
  input: RouteInput,
  hooks: RunHooks<RetrievalProgress>,
): Promise<RetrievalSummary> {
  const inputs = await loadRouteInputs(deps, input);
  const { plan, bundle, read, provenance } = inputs;
  const planned = plan.dataset.captions;
  if (!planned) {
    throw new PlanError(
      `Plan ${input.planUri} has no captions: zero-shot retrieval needs a dataset with captions.`,
    );
  }
  const spec = plan.spec.retrieval;
  // The dataset fingerprint holds the captions' hash; the shard keys the images' embedding space.
  const inputsHash = contentHash({
    route: 'retrieval',
    bundle: bundle.hash,
    dataset: plan.dataset.fingerprint,
    shards: contentHash(planShardKeys(plan, bundle, input.augment)),
    k: spec.k,
  });
  const earlier = await findRetrievalResult(deps, input.runId, inputsHash);
  if (earlier) return earlier;

  const file = await deps.store.requireJson<CaptionsFile>(keys.captions(input.runId));
  if (captionsHash(file.images) !== planned.hash) {
    throw new PlanError(
      `${deps.store.uri(keys.captions(input.runId))} does not hold the captions plan.json was made with (its hash differs). Plan the run again.`,
    );
  }
  const test = await read('test', 0);
  const set = rankedSet(plan, file, test);

  const texts = set.captions;
  hooks.heartbeat({ stage: 'captions', captionsDone: 0, captions: texts.length });
  const encoded = await captionEmbeddings(deps, bundle, texts, {
    batchSize: spec.batchSize,
    onProgress: (captionsDone) =>
      hooks.heartbeat({ stage: 'captions', captionsDone, captions: texts.length }),
    ...(hooks.signal ? { signal: hooks.signal } : {}),
  });

  const dim = test.dim;
  const images = l2NormalizeRows(gatherRows(test.embeddings, dim, set.rows), dim);
  const captionVectors = l2NormalizeRows(encoded.embeddings, dim);
  const n = set.rows.length;
  hooks.heartbeat({ stage: 'ranking', imagesDone: 0, images: n });
  const recall = await retrievalRecall(
    { images, texts: captionVectors, dim, captionImage: set.captionImage, ks: spec.k },
    {
      onBlock: (imagesDone) => hooks.heartbeat({ stage: 'ranking', imagesDone, images: n }),
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    },
  );
  const notes =
    set.leftOut > 0
      ? [
          `${set.leftOut} captioned test image(s) have no embedding (they failed to decode: the shard manifests say why) and were left out with their captions.`,
        ]
      : [];
  return writeRetrievalResult(deps, input.runId, provenance, {
    inputsHash,
    notes,
    metrics: {
      k: [...spec.k],
      imageToText: recall.imageToText,
      textToImage: recall.textToImage,
      images: n,
      captions: texts.length,
    },
    details: {
      images: set.uris,
      imageRanks: Array.from(recall.imageRanks),
      captionImage: Array.from(set.captionImage),
      captionRanks: Array.from(recall.captionRanks),
      captionBlocks: encoded.blocks.map((k) => deps.store.uri(k)),
      captionBlocksReused: encoded.reused,
      imagesLeftOut: set.leftOut,
    },
  });
}

interface RankedSet {
  /** Rows of the test matrix ranked, in captions.json order. */
  rows: number[];
  uris: string[];
  captions: string[];
  captionImage: Int32Array;
  leftOut: number;
}

/** The captioned test images with an embedding, their captions flattened, and those left out. */
function rankedSet(
  plan: { shards: { items: { uri: string; split: string }[] }[] },
  file: CaptionsFile,
  test: { rows: { key: string }[] },
): RankedSet {
  const testUris = new Set(
    plan.shards.flatMap((s) => s.items.filter((i) => i.split === 'test').map((i) => i.uri)),
  );
  const rowOf = new Map(test.rows.map((r, i) => [r.key, i]));
  const out: RankedSet = {
    rows: [],
    uris: [],
    captions: [],
    captionImage: new Int32Array(0),
    leftOut: 0,
  };
  const captionImage: number[] = [];
  for (const image of file.images) {
    if (!testUris.has(image.uri)) continue;
    const row = rowOf.get(image.uri);
    if (row === undefined) {
      out.leftOut++;
      continue;
    }
    const index = out.rows.length;
    out.rows.push(row);
    out.uris.push(image.uri);
    for (const c of image.captions) {
      out.captions.push(c);
      captionImage.push(index);
    }
  }
  if (out.rows.length === 0) {
    throw new PlanError(
      `No captioned test image has an embedding (${out.leftOut} failed to decode): zero-shot retrieval has nothing to rank.`,
    );
  }
  out.captionImage = Int32Array.from(captionImage);
  return out;
}

function gatherRows(m: Float32Array, dim: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, j) => out.set(m.subarray(r * dim, (r + 1) * dim), j * dim));
  return out;
}
