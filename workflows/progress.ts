import { defineQuery } from '@temporalio/workflow';
import type { PlanSummary } from '../activities/dataset/plan';

/** The stages of an evaluation run, in order. */
export type Stage = 'planning' | 'extracting' | 'completed';

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

/** What `clipeval status` shows for a run; small, so it can be queried at any time. */
export interface RunProgress {
  runId: string;
  stage: Stage;
  plan?: PlanSummary;
  extraction?: ExtractionProgress;
}

/** The result of a completed run. */
export interface EvaluationSummary {
  runId: string;
  plan: PlanSummary;
  bundle: string;
  extraction: ExtractionProgress & { shardKeys: string[] };
}

export const progressQuery = defineQuery<RunProgress>('progress');
