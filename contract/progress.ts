/**
 * @file The contract of a run, shared by the workflows (which report it), the activities (which
 * heartbeat it), the client (which queries and shows it) and the workers (which log by stage): the
 * stage names, each activity's stage, the heartbeat shapes, the progress queries and the summaries
 * the workflows return. It sits below all four (lint: it imports core/ as types only), so no
 * import runs from activities/ or client/ up into workflows/.
 */
import { defineQuery } from '@temporalio/workflow';
import type { PlanSummary } from '../core/dataset/plan';
import type { RouteSummary } from '../core/routes/route-result';
import type { Comparison } from '../core/runs/compare';
import type { CoopProgress } from '../core/routes/coop/run-coop';
import type { FewShotTable } from '../core/runs/summary';
import type { RetrievalProgress } from '../core/routes/retrieval/run-retrieval';
import type { RetrievalSummary } from '../core/routes/retrieval/retrieval-result';

/** The stages of an evaluation run, in order (`comparing` only for scheduled runs). */
export const STAGES = [
  'planning',
  'extracting',
  'routes',
  'summarizing',
  'comparing',
  'reporting',
  'completed',
] as const;
export type Stage = (typeof STAGES)[number];

/** The stages of a suite (workflows/evaluate-suite.ts), in order. */
export const SUITE_STAGES = ['recording', 'evaluating', 'leaderboard', 'completed'] as const;
export type SuiteStage = (typeof SUITE_STAGES)[number];

/** The stage each registered activity works for: the `stage` field of worker logs. */
export const ACTIVITY_STAGES = {
  planDataset: 'planning',
  extractShardImages: 'extracting',
  zeroShot: 'routes',
  fitLinearProbe: 'routes',
  fitTipAdapter: 'routes',
  trainCoopPrompts: 'routes',
  retrieveZeroShot: 'routes',
  summarizeRun: 'summarizing',
  compareWithPrevious: 'comparing',
  writeReport: 'reporting',
  recordSuite: 'recording',
  findFinishedRuns: 'evaluating',
  writeLeaderboard: 'leaderboard',
} as const satisfies Record<string, Stage | SuiteStage>;
export type ActivityName = keyof typeof ACTIVITY_STAGES;

/**
 * The heartbeat details of `trainCoopPrompts`, sent every step: `clipeval status` reads them
 * from the pending activity to show where training is (1-based epoch and step). Defined once,
 * by the CoOp route that produces them.
 */
export type CoopHeartbeat = CoopProgress;

/** The heartbeat details of `retrieveZeroShot`: captions encoded, then images ranked. */
export type RetrievalHeartbeat = RetrievalProgress;

/** The heartbeat details of `extractShardImages`: images of the shard done so far. */
export interface ExtractionHeartbeat {
  done: number;
}

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
  /** Images fetched and decoded by this run (none for reused shards). */
  imagesDecoded: number;
  /** Images whose crops came from the pixel cache instead (decoded by an earlier run or model). */
  imagesFromPixelCache: number;
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
  /** Zero-shot retrieval's recall@k, when the dataset has captions (plan.routes.retrieval). */
  retrieval?: RetrievalSummary;
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

/** A suite cell that did not complete: its child run and why (resume runs it again). */
export interface FailedCell {
  model: string;
  dataset: string;
  runId: string;
  error: string;
}

/** What `clipeval suite status` shows; counts over every execution of the suite so far. */
export interface SuiteProgress {
  suiteId: string;
  stage: SuiteStage;
  cells: number;
  /** Cells settled (completed, reused or failed), in this and earlier executions. */
  settled: number;
  /** Cells an earlier execution (or suite) had already completed: not run again. */
  reused: number;
  failed: FailedCell[];
  /** Child run ids in flight now. */
  running: string[];
}

/** The result of a completed suite (it completes even when cells failed: they are listed). */
export interface SuiteSummary {
  suiteId: string;
  cells: number;
  completed: number;
  reused: number;
  failed: FailedCell[];
  /** suites/<suiteId>/leaderboard.json, .csv and .html. */
  leaderboard: { jsonUri: string; csvUri: string; htmlUri: string };
}

export const suiteProgressQuery = defineQuery<SuiteProgress>('suiteProgress');
