import { proxyActivities, setHandler } from '@temporalio/workflow';
import type { CpuActivities } from '../activities';
import { type EvaluationSummary, type RunProgress, progressQuery } from './progress';

export interface EvaluateDatasetInput {
  runId: string;
  /** The run spec (validated by the planning activity: workflow code does no I/O or parsing). */
  spec: unknown;
}

// Planning lists the dataset (can be 100k+ objects): generous start-to-close, heartbeats per
// listing page so a dead worker is noticed in a minute. Bad data is a non-retryable failure.
const { planDataset } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['DatasetError', 'ConfigError'],
  },
});

/** One evaluation run: plan the dataset. Later stages (embeddings, heads, report) follow the plan. */
export async function evaluateDataset(input: EvaluateDatasetInput): Promise<EvaluationSummary> {
  let progress: RunProgress = { runId: input.runId, stage: 'planning' };
  setHandler(progressQuery, () => progress);

  const plan = await planDataset({ runId: input.runId, spec: input.spec });
  progress = { ...progress, stage: 'completed', plan };

  return { runId: input.runId, plan };
}
