import { createHash } from 'node:crypto';
import { ConfigError } from '../config/errors';
import { DEFAULT_PLANNING_LIMITS, type PlanningLimits } from '../config/run-limits';
import type { Protocol, RunSpec } from '../config/run-spec';
import { type CaptionsFile, type PlanCaptions, captionsHash } from './captions';
import { promptClassNames } from './class-names';
import { cutShards } from './shards';
import {
  DatasetError,
  type DatasetItem,
  type ItemPart,
  type SkippedObject,
  type Split,
  normalizeClassName,
} from './types';
import { quoted, shownList } from '../util/text';
import { PermanentError } from '../util/errors';

/** An image as the rest of the pipeline sees it: where it is, what it is, which class id. */
export interface PlanItem {
  uri: string;
  size: number;
  etag: string;
  /** The class id; -1 in an unlabelled dataset (captions only). */
  label: number;
  split: Split;
  /** Where the bytes are inside a container (WebDataset, Parquet); absent for an object of its own. */
  part?: ItemPart;
}

export interface PlanShard {
  index: number;
  /** Content hash of the URIs and ETags the shard covers. */
  id: string;
  count: number;
  items: PlanItem[];
}

export type SplitCounts = Record<Split, number>;

/** How the dataset is stored: one object per image (ImageFolder, manifest) or in containers. */
export type DatasetKind = 'image-folder' | 'manifest' | 'webdataset' | 'parquet';

/** runs/<runId>/plan.json: deterministic, so re-planning the same data writes the same bytes. */
export interface Plan {
  version: 1;
  runId: string;
  spec: RunSpec;
  dataset: {
    uri: string;
    kind: DatasetKind;
    layout?: 'split-folders' | 'class-folders';
    /** Prompt templates the dataset ships (WebDataset's zeroshot_classification_templates.txt). */
    templates?: string[];
    /** sha256 over every item's URI, size, ETag, class and split (and the captions' hash). */
    fingerprint: string;
    /** Set when images have captions (runs/<runId>/captions.json holds them). */
    captions?: PlanCaptions;
    skipped: { count: number; byReason: Record<string, number>; examples: SkippedObject[] };
  };
  /** Class labels; a class's id is its index. Empty for an unlabelled dataset. */
  classes: string[];
  /** What prompts call each class: the spec's display names, else the humanised label. */
  classNames: string[];
  counts: { total: number; bySplit: SplitCounts; byClass: Record<string, SplitCounts> };
  shards: PlanShard[];
}

/** What the planning activity returns through Temporal: small, no item lists. */
export interface PlanSummary {
  planUri: string;
  fingerprint: string;
  images: number;
  classes: number;
  shards: number;
  bySplit: SplitCounts;
  skipped: number;
  /** The validated extraction settings (workflow code reads them here, never parses specs). */
  extraction: RunSpec['extraction'];
  /** Which decision routes run, and the few-shot grid of CoOp and the probe. */
  routes: {
    zeroShot: boolean;
    coop: boolean;
    probe: boolean;
    probeFullData: boolean;
    /** Tip-Adapter (absent from plans that predate it: off). */
    tipAdapter?: boolean;
    /** Zero-shot retrieval: the dataset has captions and the spec does not turn it off. */
    retrieval: boolean;
    shots: number[];
    seeds: number[];
    coopHeartbeatTimeoutSeconds: number;
    /** Which classes zero-shot and CoOp are tested on (core/routes/base-to-new.ts). */
    zeroShotProtocol: Protocol;
    coopProtocol: Protocol;
  };
}

const zeroCounts = (): SplitCounts => ({ train: 0, val: 0, test: 0 });

/**
 * Shards one run may have: each shard costs about four events in the workflow's history (4.04
 * measured by bench/scale.ts), so 5,000 shards stay far below Temporal's 51,200-event limit. Shards are content-defined
 * (core/dataset/shards.ts) and average ~0.43 x shardSize images (443 expected and 427 measured
 * at the default 1024), so the cap is ~2.1-2.2M images at the default shardSize, not 5M; a larger
 * shardSize holds more, up to what plan.json can hold (~3.4M images with ~60-character URIs:
 * docs/security-and-limits.md has the measured limits, bench/json-limits.ts measures them).
 */
export const MAX_SHARDS = 5000;

/** The schema's largest shardSize (core/config/run-spec.ts). */
const MAX_SHARD_SIZE = 65536;

/**
 * The expected images per shard at a shardSize: a shard ends where an item's hash is 0 modulo
 * m = ceil(shardSize / 2) (probability 1/m) or when full, so its length is a geometric
 * distribution cut at shardSize, of mean m·(1 - (1 - 1/m)^shardSize) (~0.43 x shardSize).
 */
export function meanShardSize(shardSize: number): number {
  const m = Math.max(1, Math.ceil(shardSize / 2));
  return m * (1 - Math.pow(1 - 1 / m, shardSize));
}

/** A run plan that does not hold what a stage asks of it (a shard index beyond its shards). */
export class PlanError extends PermanentError {
  override readonly name = 'PlanError';
}

/** What the planner is given: the validated spec and the dataset as loaded. */
export interface PlanInput {
  runId: string;
  spec: RunSpec;
  kind: Plan['dataset']['kind'];
  layout?: Plan['dataset']['layout'];
  items: readonly DatasetItem[];
  skipped: readonly SkippedObject[];
  /**
   * The dataset's own label space, in label-id order (WebDataset's classnames.txt, a Parquet
   * ClassLabel): kept whole, so ids stay the dataset's even where a class has no images here.
   */
  classes?: readonly string[];
  /** Prompt templates the dataset ships. */
  templates?: readonly string[];
  /** Deployment limits (max classes); the defaults when absent. */
  limits?: PlanningLimits;
}

/**
 * The run plan: classes, labelled items in URI order, counts, fingerprint and shards. Pure and
 * deterministic (the same data and spec give the same plan); a dataset no route can use is a
 * DatasetError.
 */
export function buildPlan(input: PlanInput): Plan {
  const { spec } = input;
  if (input.items.length === 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has no images to evaluate (all objects were skipped).`,
    );
  }
  const labelled = isLabelled(spec, input.items);
  const { classes, classNames } = labelled
    ? planClasses(spec, input.items, input.limits ?? DEFAULT_PLANNING_LIMITS, input.classes)
    : { classes: [], classNames: [] };
  const templates = labelled ? datasetTemplates(spec, input.templates) : undefined;
  const items = labelledItems(input.items, classes);
  const captions = planCaptions(input);
  const { bySplit, byClass, fingerprint } = countItems(items, classes, captions);
  checkRoutesCanRun(spec, classes, bySplit, labelled);
  checkRetrievalCanRun(spec, captions);
  const shards = planShards(spec, items);
  return {
    version: 1,
    runId: input.runId,
    spec,
    dataset: {
      uri: spec.dataset.uri,
      kind: input.kind,
      ...(input.layout ? { layout: input.layout } : {}),
      ...(templates ? { templates } : {}),
      fingerprint,
      ...(captions ? { captions } : {}),
      skipped: skippedSummary(input.skipped),
    },
    classes,
    classNames,
    counts: { total: items.length, bySplit, byClass },
    shards,
  };
}

/**
 * Whether the dataset has labels: every item has a class, or none has (captions only). An
 * unlabelled dataset has no classes, and dataset.classes cannot apply to it.
 */
function isLabelled(spec: RunSpec, items: readonly DatasetItem[]): boolean {
  const unlabelled = items.filter((i) => i.className === undefined).length;
  if (unlabelled === 0) return true;
  if (unlabelled < items.length) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: ${unlabelled} of ${items.length} images have no label. Label every image, or none (a captions-only dataset for zero-shot retrieval).`,
    );
  }
  if (spec.dataset.classes) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has no labels (captions only), so dataset.classes cannot apply. Remove dataset.classes, or label the images.`,
    );
  }
  return false;
}

/** The captions of the items that have any, in plan order (URI order), or undefined if none has. */
export function captionsFile(input: Pick<PlanInput, 'runId' | 'items'>): CaptionsFile | undefined {
  const images = input.items
    .filter((i) => i.captions !== undefined && i.captions.length > 0)
    .map((i) => ({ uri: i.uri, captions: i.captions! }))
    .sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  return images.length > 0 ? { version: 1, runId: input.runId, images } : undefined;
}

function planCaptions(input: PlanInput): PlanCaptions | undefined {
  const file = captionsFile(input);
  if (!file) return undefined;
  const testUris = new Set(input.items.filter((i) => i.split === 'test').map((i) => i.uri));
  return {
    images: file.images.length,
    captions: file.images.reduce((n, i) => n + i.captions.length, 0),
    testImages: file.images.filter((i) => testUris.has(i.uri)).length,
    hash: captionsHash(file.images),
  };
}

/**
 * Whether a plan runs zero-shot retrieval: on when asked for, or (`auto`) when test images have
 * captions (captions only in other splits leave `auto` off: there is nothing to rank).
 */
export function retrievalEnabled(spec: RunSpec, captions: PlanCaptions | undefined): boolean {
  const { enabled } = spec.retrieval;
  return enabled === true || (enabled === 'auto' && (captions?.testImages ?? 0) > 0);
}

/** Refuses retrieval asked for on a dataset without captions, or without captioned test images. */
function checkRetrievalCanRun(spec: RunSpec, captions: PlanCaptions | undefined): void {
  if (!retrievalEnabled(spec, captions)) return;
  if (!captions) {
    throw new DatasetError(
      `Run spec retrieval.enabled is true, but ${spec.dataset.uri} has no captions (a WebDataset's .txt members, a manifest's "captions" field, ` +
        'a Parquet dataset.captionColumn). Add captions, or set retrieval.enabled to false or "auto".',
    );
  }
  if (captions.testImages === 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: no test image has captions, so zero-shot retrieval (which ranks the test split) has nothing to rank. ` +
        'Put the captioned images in the test split, or set retrieval.enabled to "auto" or false.',
    );
  }
}

/** The class list (the spec's, in its order, else the labels found, sorted) and prompt names. */
function planClasses(
  spec: RunSpec,
  items: readonly DatasetItem[],
  limits: PlanningLimits,
  labelSpace: readonly string[] | undefined,
): { classes: string[]; classNames: string[] } {
  const found = new Set(items.map((i) => normalizeClassName(i.className!)));
  // A closed class list keeps its given order (users map ids to names with it); otherwise sorted.
  const classes =
    spec.dataset.classes?.map(normalizeClassName) ??
    labelSpace?.map(normalizeClassName) ??
    [...found].sort();
  if (Math.max(classes.length, found.size) > limits.maxClasses) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has ${Math.max(classes.length, found.size)} classes; one run handles at most ${limits.maxClasses} ` +
        `(CLIPEVAL_MAX_CLASSES: per-class metrics, prompts and score matrices grow with the class count). Evaluate a subset of the classes per run.`,
    );
  }
  // Sets, not includes/indexOf: with 100,000 classes a quadratic check blocks planning for minutes.
  const listed = new Set<string>();
  const twice = classes.filter((c) => {
    const again = listed.has(c);
    listed.add(c);
    return again;
  });
  if (twice.length > 0) {
    throw new DatasetError(
      `Run spec dataset.classes lists ${shownList(twice)} more than once (NFC and NFD spellings of a name are one class). List each class once.`,
    );
  }
  // A dataset's own label space may hold classes this split set lacks (ids must not shift).
  const missing = labelSpace && !spec.dataset.classes ? [] : classes.filter((c) => !found.has(c));
  if (missing.length > 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: class(es) with no images: ${shownList(missing)}`,
    );
  }
  const unknown = [...found].filter((c) => !listed.has(c));
  if (unknown.length > 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: class(es) not in dataset.classes: ${shownList(unknown)}. Add them to the list or remove those images.`,
    );
  }
  // Only a sorted order may disagree with a built-in list's ids (benchmark-class-names.ts).
  const order = spec.dataset.classes || labelSpace ? 'given' : 'sorted';
  let classNames: string[];
  try {
    classNames = promptClassNames(classes, spec.classNames, order);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new ConfigError(`Dataset ${spec.dataset.uri}: ${err.message}`, err.source);
    throw new DatasetError(`Run spec classNames: ${(err as Error).message}`);
  }
  // A built-in list's own clashes (ImageNet's two `missile`s, two `sunglasses`) are the benchmark's.
  const builtIn = typeof spec.classNames === 'string';
  if ((spec.zeroShot.enabled || spec.coop.enabled) && !builtIn)
    checkDistinctPrompts(spec, classes, classNames);
  return { classes, classNames };
}

/**
 * Refuses classes whose prompts would read the same: the CLIP tokenizer lowercases and collapses
 * whitespace, so `Cat` and `cat` (class folders differing only in case), or `sea_lion` and
 * `sea-lion`, would get identical text prototypes and zero-shot and CoOp could never tell them
 * apart. Labels stay case-sensitive (S3 keys are), so the linear probe alone accepts them.
 */
function checkDistinctPrompts(
  spec: RunSpec,
  classes: readonly string[],
  classNames: readonly string[],
): void {
  const byText = new Map<string, number>();
  const clashes: string[] = [];
  classNames.forEach((name, i) => {
    const text = name.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim();
    const first = byText.get(text);
    if (first === undefined) byText.set(text, i);
    else clashes.push(`${quoted(classes[first]!, 100)} and ${quoted(classes[i]!, 100)}`);
  });
  if (clashes.length > 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: class(es) whose prompts would be identical (the tokenizer ignores case): ${clashes.slice(0, 10).join('; ')}. ` +
        'Give them distinct display names in classNames, merge the folders or labels, or disable zeroShot and coop.',
    );
  }
}

/**
 * The templates a plan keeps: the dataset's own when the spec asks for them
 * (`zeroShot.templates: dataset`); a dataset that ships none is then a DatasetError.
 */
function datasetTemplates(
  spec: RunSpec,
  shipped: readonly string[] | undefined,
): string[] | undefined {
  if (spec.zeroShot.templates !== 'dataset') return shipped ? [...shipped] : undefined;
  if (!shipped || shipped.length === 0) {
    throw new DatasetError(
      `Run spec zeroShot.templates is "dataset", but ${spec.dataset.uri} ships no templates (a WebDataset's zeroshot_classification_templates.txt). ` +
        'Use "default", "openai-imagenet" or your own list.',
    );
  }
  return [...shipped];
}

/** The items sorted by URI, each with its class id. */
function labelledItems(items: readonly DatasetItem[], classes: readonly string[]): PlanItem[] {
  const classId = new Map(classes.map((c, i) => [c, i]));
  const sorted = [...items].sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  return sorted.map((i) => ({
    uri: i.uri,
    size: i.size,
    etag: i.etag,
    label: i.className === undefined ? -1 : classId.get(normalizeClassName(i.className))!,
    split: i.split,
    ...(i.part ? { part: i.part } : {}),
  }));
}

/** Counts per split and per class, and the dataset fingerprint (sha256 over every item). */
function countItems(
  items: readonly PlanItem[],
  classes: readonly string[],
  captions: PlanCaptions | undefined,
): { bySplit: SplitCounts; byClass: Record<string, SplitCounts>; fingerprint: string } {
  const bySplit = zeroCounts();
  // Null prototype: a class may be called `__proto__` or `constructor`.
  const byClass = Object.create(null) as Record<string, SplitCounts>;
  for (const c of classes) byClass[c] = zeroCounts();
  const fp = createHash('sha256');
  for (const i of items) {
    bySplit[i.split]++;
    if (i.label >= 0) byClass[classes[i.label]!]![i.split]++;
    fp.update(`${i.uri}\t${i.size}\t${i.etag}\t${classes[i.label] ?? ''}\t${i.split}\n`);
  }
  // Only when there are captions: the fingerprints of datasets without any stay as they were.
  if (captions) fp.update(`captions\t${captions.hash}\n`);
  return { bySplit, byClass, fingerprint: fp.digest('hex') };
}

/**
 * Refuses a dataset the enabled routes cannot use: no labels for the classification routes, one
 * class for the trained routes, no test split.
 */
function checkRoutesCanRun(
  spec: RunSpec,
  classes: readonly string[],
  bySplit: SplitCounts,
  labelled: boolean,
): void {
  const classifying = (
    [
      ['zeroShot.enabled', spec.zeroShot.enabled],
      ['coop.enabled', spec.coop.enabled],
      ['probe.enabled', spec.probe.enabled],
      ['tipAdapter.enabled', spec.tipAdapter.enabled],
    ] as const
  ).flatMap(([field, on]) => (on ? [field] : []));
  if (!labelled && classifying.length > 0) {
    throw new ConfigError(
      `Dataset ${spec.dataset.uri} has no labels (captions only), so the classification routes cannot run. ` +
        `Set ${classifying.join(', ')} to false in the run spec (zero-shot retrieval runs on the captions).`,
      'run spec',
    );
  }
  checkBaseToNew(spec, classes);
  // Tip-Adapter's few-shot cache (and -F's cross-entropy) needs train images of 2+ classes too.
  const trained = spec.coop.enabled || spec.probe.enabled || spec.tipAdapter.enabled;
  const tip = spec.tipAdapter.enabled;
  const which = tip ? 'CoOp, the linear probe and Tip-Adapter' : 'CoOp and the linear probe';
  const off = tip
    ? 'coop.enabled, probe.enabled and tipAdapter.enabled'
    : 'coop.enabled and probe.enabled';
  if (classes.length < 2 && trained) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has one class (${shownList(classes)}): ${which} need at least 2. Set ${off} to false to run zero-shot alone.`,
    );
  }
  if (bySplit.train === 0 && trained) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has no train images, so ${which} cannot train. Add a train/ split folder, a "train" split in the manifest, or give splitRatio.train > 0 (or set ${off} to false to run zero-shot alone).`,
    );
  }
  const anyRoute = spec.zeroShot.enabled || trained || spec.retrieval.enabled === true;
  if (anyRoute && bySplit.test === 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has no test images, so no route can be scored. Add a test/ split folder, a "test" split in the manifest, or give splitRatio.test > 0 (or disable zeroShot, coop, probe and retrieval to extract embeddings only).`,
    );
  }
}

/**
 * base-to-new splits the class list in two halves, so it needs a class in each; CoOp trains on
 * the base half, so it needs 2 base classes there (3 classes). Both are ConfigErrors naming the field.
 */
function checkBaseToNew(spec: RunSpec, classes: readonly string[]): void {
  const refuse = (field: string, needed: number, why: string) => {
    throw new ConfigError(
      `Run spec ${field}: base-to-new ${why}, so it needs at least ${needed} classes; dataset ${spec.dataset.uri} has ${classes.length} (${shownList(classes)}). Use protocol: all-classes or evaluate more classes.`,
      field,
    );
  };
  const halves = 'tests on the first and the second half of the class list';
  if (spec.zeroShot.enabled && spec.zeroShot.protocol === 'base-to-new' && classes.length < 2)
    refuse('zeroShot.protocol', 2, halves);
  if (spec.coop.enabled && spec.coop.protocol === 'base-to-new' && classes.length < 3)
    refuse('coop.protocol', 3, `${halves} and CoOp trains on the first half (at least 2 classes)`);
  if (spec.tipAdapter.enabled && spec.tipAdapter.protocol === 'base-to-new' && classes.length < 3)
    refuse(
      'tipAdapter.protocol',
      3,
      `${halves} and Tip-Adapter builds its cache and searches alpha and beta on the first half (at least 2 classes)`,
    );
}

/** The items cut into content-defined shards, at most MAX_SHARDS of them. */
function planShards(spec: RunSpec, items: PlanItem[]): PlanShard[] {
  const shards = cutShards(items, spec.shardSize);
  if (shards.length > MAX_SHARDS) {
    const needed = shardSizeFor(items.length);
    const fits =
      needed === undefined || spec.shardSize >= MAX_SHARD_SIZE
        ? undefined
        : Math.max(needed, spec.shardSize + 1);
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: ${items.length} images make ${shards.length} shards of at most ${spec.shardSize} ` +
        `(~${Math.round(meanShardSize(spec.shardSize))} on average); one run handles at most ${MAX_SHARDS} shards (Temporal history). ` +
        (fits === undefined
          ? 'Split the dataset into several runs.'
          : `Set shardSize to at least ${fits}, or split the dataset into several runs.`),
    );
  }
  return shards.map((s, index) => ({ index, id: s.id, count: s.items.length, items: s.items }));
}

/** The smallest shardSize whose expected shard count leaves 5% of MAX_SHARDS spare, if any. */
function shardSizeFor(images: number): number | undefined {
  const fits = (size: number) => images / meanShardSize(size) <= 0.95 * MAX_SHARDS;
  if (!fits(MAX_SHARD_SIZE)) return undefined;
  let lo = 1;
  let hi = MAX_SHARD_SIZE;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function skippedSummary(skipped: readonly SkippedObject[]): Plan['dataset']['skipped'] {
  const byReason: Record<string, number> = {};
  for (const s of skipped) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;
  return { count: skipped.length, byReason, examples: skipped.slice(0, 20) };
}

export function summarisePlan(plan: Plan, planUri: string): PlanSummary {
  return {
    planUri,
    fingerprint: plan.dataset.fingerprint,
    images: plan.counts.total,
    classes: plan.classes.length,
    shards: plan.shards.length,
    bySplit: plan.counts.bySplit,
    skipped: plan.dataset.skipped.count,
    extraction: plan.spec.extraction,
    routes: {
      zeroShot: plan.spec.zeroShot.enabled,
      coop: plan.spec.coop.enabled,
      probe: plan.spec.probe.enabled,
      probeFullData: plan.spec.probe.fullData,
      tipAdapter: plan.spec.tipAdapter.enabled,
      retrieval: retrievalEnabled(plan.spec, plan.dataset.captions),
      shots: plan.spec.fewShot.shots,
      seeds: plan.spec.fewShot.seeds,
      coopHeartbeatTimeoutSeconds: plan.spec.coop.heartbeatTimeoutSeconds,
      zeroShotProtocol: plan.spec.zeroShot.protocol,
      coopProtocol: plan.spec.coop.protocol,
    },
  };
}
