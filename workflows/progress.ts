import { defineQuery } from '@temporalio/workflow';
import type { PlanSummary } from '../activities/dataset/plan';
import type { RouteSummary } from '../activities/heads/route-result';
import type { Comparison } from '../activities/heads/compare';
import type { FewShotTable } from '../activities/summarize-run';

/** The stages of an evaluation run, in order (`comparing` only for scheduled runs). */
export type Stage =
  'planning' | 'extracting' | 'routes' | 'summarizing' | 'comparing' | 'reporting' | 'completed';

export interface ExtractionProgress {
  shards: number;
  shardsDone: number;
  /** Shards an earlier run had already encoded (content-addressed reuse). */
  shardsReused: number;
  imagesDone: number;
  /** Embedding rows written: images plus their augmented views. */
  rows: number;
  /** Images that could not be decoded (listed with reasons in the shard manifests). */
  imagesFailed: number;
}

/** The decision routes: one job per route and (shots, seed). */
export interface RoutesProgress {
  done: number;
  total: number;
  /** "<route job>: <error>" for each failed job. */
  failed: string[];
}

/** What `clipeval status` shows for a run; small, so it can be queried at any time. */
export interface RunProgress {
  runId: string;
  stage: Stage;
  plan?: PlanSummary;
  extraction?: ExtractionProgress;
  routes?: RoutesProgress;
}

/** The result of a completed run. */
export interface EvaluationSummary {
  runId: string;
  plan: PlanSummary;
  bundle: string;
  extraction: ExtractionProgress & { shardKeys: string[] };
  /** One entry per route job: metrics and where the full results are. */
  routes: RouteSummary[];
  /** Mean and spread over seeds per route and shot count. */
  fewShot: FewShotTable;
  summaryUri: string;
  /** runs/<runId>/report.json and report.html (self-contained: open it in any browser). */
  report: { reportUri: string; htmlUri: string };
  /** Set for runs started by a schedule. */
  schedule?: { id: string };
  /**
   * A scheduled run's deltas against the schedule's previous successful run (absent for its
   * first); `regression` when a route dropped by more than the spec's regression.maxDrop.
   */
  comparison?: Comparison;
}

export const progressQuery = defineQuery<RunProgress>('progress');
