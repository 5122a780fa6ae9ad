import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from './config/errors';
import { parseRunSpec } from './config/run-spec';
import { loadDataset } from './dataset/load';
import { buildPlan, type PlanSummary, summarisePlan } from './dataset/plan';
import { DatasetError } from './dataset/types';
import { keys } from './storage/keys';
import { putJson } from './storage/objects';

export interface PlanDatasetInput {
  runId: string;
  /** The run spec as the user gave it; validated again here, since anyone can start a workflow. */
  spec: unknown;
}

/**
 * Activity (cpu queue): lists or reads the dataset, builds the run plan and writes it to
 * runs/<runId>/plan.json in one PutObject. Idempotent: the plan is a pure function of the
 * dataset and spec, so a retry rewrites identical bytes. Bad data fails without retries.
 */
export function planDatasetActivity(deps: { s3: S3Client; bucket: string }) {
  return async function planDataset(input: PlanDatasetInput): Promise<PlanSummary> {
    try {
      const spec = parseRunSpec(input.spec);
      const data = await loadDataset(deps.s3, spec.dataset, (n) => heartbeat({ objectsListed: n }));
      const plan = buildPlan({ runId: input.runId, spec, ...data });
      const key = keys.plan(input.runId);
      await putJson(deps.s3, deps.bucket, key, plan);
      return summarisePlan(plan, `s3://${deps.bucket}/${key}`);
    } catch (err) {
      if (err instanceof DatasetError || err instanceof ConfigError) {
        throw ApplicationFailure.nonRetryable(err.message, err.name);
      }
      throw err;
    }
  };
}
