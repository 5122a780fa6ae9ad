import { createHash } from 'node:crypto';
import type { RunSpec } from '../config/run-spec';
import { promptClassNames } from '../heads/class-names';
import { cutShards } from './shards';
import { DatasetError, type DatasetItem, type SkippedObject, type Split } from './types';

/** An image as the rest of the pipeline sees it: where it is, what it is, which class id. */
export interface PlanItem {
  uri: string;
  size: number;
  etag: string;
  label: number;
  split: Split;
}

export interface PlanShard {
  index: number;
  /** Content hash of the URIs and ETags the shard covers. */
  id: string;
  count: number;
  items: PlanItem[];
}

export type SplitCounts = Record<Split, number>;

/** runs/<runId>/plan.json: deterministic, so re-planning the same data writes the same bytes. */
export interface Plan {
  version: 1;
  runId: string;
  spec: RunSpec;
  dataset: {
    uri: string;
    kind: 'image-folder' | 'manifest';
    layout?: 'split-folders' | 'class-folders';
    /** sha256 over every item's URI, size, ETag, class and split. */
    fingerprint: string;
    skipped: { count: number; byReason: Record<string, number>; examples: SkippedObject[] };
  };
  /** Class labels; a class's id is its index. */
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
    shots: number[];
    seeds: number[];
    coopHeartbeatTimeoutSeconds: number;
  };
}

const zeroCounts = (): SplitCounts => ({ train: 0, val: 0, test: 0 });

/**
 * Shards one run may have: each shard costs about six events in the workflow's history, so
 * 5,000 shards (5M images at the default size) stay far below Temporal's 51,200-event limit.
 */
export const MAX_SHARDS = 5000;

export function buildPlan(input: {
  runId: string;
  spec: RunSpec;
  kind: Plan['dataset']['kind'];
  layout?: Plan['dataset']['layout'];
  items: readonly DatasetItem[];
  skipped: readonly SkippedObject[];
}): Plan {
  const { spec, items } = input;
  if (items.length === 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has no images to evaluate (all objects were skipped).`,
    );
  }
  const found = new Set(items.map((i) => i.className));
  // A closed class list keeps its given order (users map ids to names with it); otherwise sorted.
  const classes = spec.dataset.classes ?? [...found].sort();
  const missing = classes.filter((c) => !found.has(c));
  if (missing.length > 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: class(es) with no images: ${missing.join(', ')}`,
    );
  }
  const unknown = [...found].filter((c) => !classes.includes(c));
  if (unknown.length > 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: class(es) not in dataset.classes: ${unknown.join(', ')}. Add them to the list or remove those images.`,
    );
  }
  const classId = new Map(classes.map((c, i) => [c, i]));
  let classNames: string[];
  try {
    classNames = promptClassNames(classes, spec.classNames);
  } catch (err) {
    throw new DatasetError(`Run spec classNames: ${(err as Error).message}`);
  }

  const sorted = [...items].sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  const planItems: PlanItem[] = sorted.map((i) => ({
    uri: i.uri,
    size: i.size,
    etag: i.etag,
    label: classId.get(i.className)!,
    split: i.split,
  }));

  const bySplit = zeroCounts();
  const byClass: Record<string, SplitCounts> = Object.fromEntries(
    classes.map((c) => [c, zeroCounts()]),
  );
  const fp = createHash('sha256');
  for (const i of planItems) {
    bySplit[i.split]++;
    byClass[classes[i.label]!]![i.split]++;
    fp.update(`${i.uri}\t${i.size}\t${i.etag}\t${classes[i.label]}\t${i.split}\n`);
  }

  if (classes.length < 2 && (spec.coop.enabled || spec.probe.enabled)) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has one class (${classes[0]}): CoOp and the linear probe need at least 2. Set coop.enabled and probe.enabled to false to run zero-shot alone.`,
    );
  }
  const anyRoute = spec.zeroShot.enabled || spec.coop.enabled || spec.probe.enabled;
  if (anyRoute && bySplit.test === 0) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri} has no test images, so no route can be scored. Add a test/ split folder, a "test" split in the manifest, or give splitRatio.test > 0 (or disable zeroShot, coop and probe to extract embeddings only).`,
    );
  }

  const shards = cutShards(planItems, spec.shardSize);
  if (shards.length > MAX_SHARDS) {
    throw new DatasetError(
      `Dataset ${spec.dataset.uri}: ${planItems.length} images make ${shards.length} shards of at most ${spec.shardSize}; ` +
        `one run handles at most ${MAX_SHARDS} shards (Temporal history). Set shardSize to at least ${Math.ceil((2 * planItems.length) / MAX_SHARDS)}.`,
    );
  }

  const byReason: Record<string, number> = {};
  for (const s of input.skipped) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;

  return {
    version: 1,
    runId: input.runId,
    spec,
    dataset: {
      uri: spec.dataset.uri,
      kind: input.kind,
      ...(input.layout ? { layout: input.layout } : {}),
      fingerprint: fp.digest('hex'),
      skipped: { count: input.skipped.length, byReason, examples: input.skipped.slice(0, 20) },
    },
    classes,
    classNames,
    counts: { total: planItems.length, bySplit, byClass },
    shards: shards.map((s, index) => ({
      index,
      id: s.id,
      count: s.items.length,
      items: s.items,
    })),
  };
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
      shots: plan.spec.fewShot.shots,
      seeds: plan.spec.fewShot.seeds,
      coopHeartbeatTimeoutSeconds: plan.spec.coop.heartbeatTimeoutSeconds,
    },
  };
}
