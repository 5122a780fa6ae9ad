import { defineQuery } from '@temporalio/workflow';
import type { PlanSummary } from '../activities/dataset/plan';

/** The stages of an evaluation run, in order. */
export type Stage = 'planning' | 'completed';

/** What `clipeval status` shows for a run; small, so it can be queried at any time. */
export interface RunProgress {
  runId: string;
  stage: Stage;
  plan?: PlanSummary;
}

/** The result of a completed run. */
export interface EvaluationSummary {
  runId: string;
  plan: PlanSummary;
}

export const progressQuery = defineQuery<RunProgress>('progress');
