/**
 * @file The one place that names S3 keys in clipeval's output bucket. Every other module asks here,
 * so the layout can be read (and changed) in one file:
 *
 *   runs/<runId>/plan.json                      the run plan (classes, counts, shards, fingerprint, spec)
 *   runs/<runId>/captions.json                  the planned images' captions (zero-shot retrieval), beside the plan
 *   runs/<runId>/summary.json                   every route's metrics and the few-shot table
 *   embeddings/<space>/<content>.arrow          an embedding shard (Arrow IPC file)
 *   embeddings/<space>/<content>.json           its manifest, written after the shard: rows, sha256, failures
 *   pixels/<geometry>/<block>.arrow             a pixel-cache block: the 8-bit crops of up to 32 rows (Arrow IPC file)
 *   pixels/<geometry>/<block>.json              its manifest, written after the block: rows, sha256, failed images
 *   prototypes/<space>/<content>.arrow          zero-shot class prototypes (bundle + class names + templates)
 *   captions/<space>/<content>.arrow            a block of caption embeddings (up to 2,048 captions: their texts' hash)
 *   runs/<runId>/results/<route>[/<variant>]/   metrics.json, clip-benchmark.json, predictions.arrow
 *   runs/<runId>/results/retrieval/             metrics.json, clip-benchmark.json (zero-shot retrieval recall@k)
 *   runs/<runId>/coop/<variant>/checkpoint.json CoOp's context and optimiser state after the last epoch
 *   runs/<runId>/coop/<variant>/context.json    the learned context with its config (the artefact)
 *   runs/<runId>/probe/<variant>/probe.json     the fitted probe (weights, bias, chosen hyper-parameters)
 *   runs/<runId>/report.json, report.html       the run's report: its data, and a self-contained page
 *   runs/<runId>/comparison.json                a scheduled run's deltas against the schedule's previous success
 *   schedules/<scheduleId>/last-success.json    the schedule's last successful run and its recent history
 *   suites/<suiteId>/suite.json                 a suite's validated spec and its cells (child run ids)
 *   suites/<suiteId>/leaderboard.json|csv|html  the suite's leaderboard: data, table, self-contained page
 *
 * A caption block is an Arrow IPC file with one row per caption: `text` (utf8) and `embedding`
 * (fixed_size_list<float32>[dim], L2-normalised); <space> is the text tower's (as prototypes'),
 * <content> the hash of the block's texts in order, so every run with the same captions reuses it.
 *
 * <route> is zero-shot, coop, probe, tip-adapter or tip-adapter-f; <variant> (trained routes) is
 * `all` (whole train split) or `<k>shot-seed<s>`.
 * <space> names the embedding space (model bundle + preprocessing), <content> the exact images
 * and labels a shard covers: runs over the same data and model share shards.
 * <geometry> names how crops are cut (mode, crop side, resize, interpolation, rounding; not the
 * model: core/embeddings/shard-key.ts pixelGeometry), <block> the images (URI + ETag) and views a
 * block holds, consecutive rows of one shard (core/embeddings/pixel-blocks.ts): every model of
 * that geometry reads the crops the first one decoded.
 *
 * A pixel block is an Arrow IPC file with one row per crop: `image` (utf8: the image URI), `view`
 * (int32: 0 the center crop, k the k-th augmented view) and `pixels` (fixed_size_list<uint8>
 * of S*S*3: HWC RGB, as the uint8 image graphs take it); its schema metadata repeats the
 * geometry and S. S = 224 costs 147 KiB per crop.
 */
import { PermanentError } from '../util/errors';

/**
 * A run id, schedule id, variant or content hash that cannot name a key: deterministic (the same
 * input fails every time), so permanent.
 */
export class InvalidKeyError extends PermanentError {
  override readonly name = 'InvalidKeyError';
}

// ':' because Temporal names a scheduled run `<schedule id>-<RFC 3339 time>` and that is its run id.
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
// Shorter than a run id: scheduled run ids append `-2026-01-01T02:00:00Z` (21 characters).
const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

// Short enough that a child run id `<suiteId>--<model>--<dataset>` (names of at most 32
// characters) fits a run id's 128; ':' because a scheduled suite's id ends in an RFC 3339 time.
// No `--`: it separates the parts of a child run id (core/util/suite-cells.ts).
const SUITE_ID = /^(?!.*--)[A-Za-z0-9][A-Za-z0-9._:-]{0,59}$/;
/** The longest schedule id of a suite schedule: Temporal appends `-<time>` (21 characters). */
export const MAX_SUITE_SCHEDULE_ID = 60 - '-2026-01-01T02:00:00Z'.length;

export function assertSuiteId(suiteId: string): string {
  if (!SUITE_ID.test(suiteId)) {
    throw new InvalidKeyError(
      `suite id "${suiteId}" is not valid: use 1-60 characters from A-Z a-z 0-9 . _ - : (starting with a letter or digit, no "--")`,
    );
  }
  return suiteId;
}

export function assertRunId(runId: string): string {
  if (!RUN_ID.test(runId)) {
    throw new InvalidKeyError(
      `run id "${runId}" is not valid: use 1-128 characters from A-Z a-z 0-9 . _ - : (starting with a letter or digit)`,
    );
  }
  return runId;
}

export function assertScheduleId(scheduleId: string): string {
  if (!SCHEDULE_ID.test(scheduleId)) {
    throw new InvalidKeyError(
      `schedule id "${scheduleId}" is not valid: use 1-100 characters from A-Z a-z 0-9 . _ - (starting with a letter or digit)`,
    );
  }
  return scheduleId;
}

export const keys = {
  runPrefix: (runId: string) => `runs/${assertRunId(runId)}/`,
  plan: (runId: string) => `runs/${assertRunId(runId)}/plan.json`,
  captions: (runId: string) => `runs/${assertRunId(runId)}/captions.json`,
  captionEmbeddings: (space: string, content: string) =>
    `captions/${hex(space)}/${hex(content)}.arrow`,
  retrievalResult: (runId: string, file: 'metrics.json' | 'clip-benchmark.json') =>
    `runs/${assertRunId(runId)}/results/retrieval/${file}`,
  runSummary: (runId: string) => `runs/${assertRunId(runId)}/summary.json`,
  /** Every shard and manifest of one embedding space (the bench clears its own spaces). */
  embeddingSpacePrefix: (space: string) => `embeddings/${hex(space)}/`,
  embeddingShard: (space: string, content: string) =>
    `embeddings/${hex(space)}/${hex(content)}.arrow`,
  embeddingManifest: (space: string, content: string) =>
    `embeddings/${hex(space)}/${hex(content)}.json`,
  /** Every block and manifest of one pixel geometry. */
  pixelGeometryPrefix: (geometry: string) => `pixels/${hex(geometry)}/`,
  pixelBlock: (geometry: string, block: string) => `pixels/${hex(geometry)}/${hex(block)}.arrow`,
  pixelBlockManifest: (geometry: string, block: string) =>
    `pixels/${hex(geometry)}/${hex(block)}.json`,
  prototypes: (space: string, content: string) => `prototypes/${hex(space)}/${hex(content)}.arrow`,
  routeResult: (runId: string, route: Route, variant: string | undefined, file: RouteResultFile) =>
    `runs/${assertRunId(runId)}/results/${route}/${variant === undefined ? '' : `${checkVariant(variant)}/`}${file}`,
  coopCheckpoint: (runId: string, variant: string) =>
    `runs/${assertRunId(runId)}/coop/${checkVariant(variant)}/checkpoint.json`,
  coopContext: (runId: string, variant: string) =>
    `runs/${assertRunId(runId)}/coop/${checkVariant(variant)}/context.json`,
  probeModel: (runId: string, variant: string) =>
    `runs/${assertRunId(runId)}/probe/${checkVariant(variant)}/probe.json`,
  report: (runId: string, file: ReportFile) => `runs/${assertRunId(runId)}/${file}`,
  runComparison: (runId: string) => `runs/${assertRunId(runId)}/comparison.json`,
  scheduleLastSuccess: (scheduleId: string) =>
    `schedules/${assertScheduleId(scheduleId)}/last-success.json`,
  suiteSpec: (suiteId: string) => `suites/${assertSuiteId(suiteId)}/suite.json`,
  leaderboard: (suiteId: string, file: LeaderboardFile) =>
    `suites/${assertSuiteId(suiteId)}/${file}`,
  /** The manifest beside an embedding shard (same space and content). */
  manifestOfShard: (shardKey: string): string => {
    const m = /^embeddings\/([0-9a-f]{8,64})\/([0-9a-f]{8,64})\.arrow$/.exec(shardKey);
    if (!m) throw new InvalidKeyError(`"${shardKey}" is not an embedding shard key`);
    return keys.embeddingManifest(m[1]!, m[2]!);
  },
};

export type Route = 'zero-shot' | 'coop' | 'probe' | 'tip-adapter' | 'tip-adapter-f';
export type RouteResultFile = 'metrics.json' | 'clip-benchmark.json' | 'predictions.arrow';
export type ReportFile = 'report.json' | 'report.html';
export type LeaderboardFile = 'leaderboard.json' | 'leaderboard.csv' | 'leaderboard.html';

/** `all` (the whole train split) or `<k>shot-seed<s>`. */
export function variantName(shots: number | 'all', seed = 0): string {
  return shots === 'all' ? 'all' : `${shots}shot-seed${seed}`;
}

function checkVariant(v: string): string {
  if (!/^(all|\d+shot-seed\d+)$/.test(v))
    throw new InvalidKeyError(`"${v}" is not a route variant`);
  return v;
}

function hex(id: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(id)) throw new InvalidKeyError(`"${id}" is not a content hash`);
  return id;
}

/**
 * CLIP_benchmark's WebDataset layout, relative to the dataset's prefix (`clipeval dataset
 * export-wds` writes it): the class names prompts use, one per line; the zero-shot templates, one
 * per line; per split, the shard count and the shards `0.tar ... N-1.tar`. `exportMarker` is
 * clipeval's own record of what an export wrote there (which dataset, which settings), so a
 * re-run can tell its own earlier output from someone else's data.
 */
export const webDatasetKeys = {
  classNames: 'classnames.txt',
  templates: 'zeroshot_classification_templates.txt',
  nshardsFile: 'nshards.txt',
  nshards: (split: string) => `${split}/${webDatasetKeys.nshardsFile}`,
  shard: (split: string, index: number) => `${split}/${index}.tar`,
  /** Whether a key (relative to the prefix) is a shard or a shard count of some split. */
  isSplitFile: (key: string) => /^[^/]+\/(\d+\.tar|nshards\.txt)$/.test(key),
  exportMarker: 'clipeval-export.json',
  /** A sample's member names in a shard: `s0000042.jpg`, `s0000042.cls`. */
  sampleKey: (index: number) => `s${String(index).padStart(7, '0')}`,
};
