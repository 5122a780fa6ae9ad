// clipeval's programmatic API, for services that trigger and watch evaluation runs.
export { loadEnv, loadStackEnvDefaults, type ClipevalEnv } from './activities/config/env';
export { ConfigError } from './activities/config/errors';
export {
  loadRunSpec,
  parseRunSpec,
  type RunSpec,
  type RunSpecInput,
} from './activities/config/run-spec';
export type { Plan, PlanSummary } from './activities/dataset/plan';
export {
  connectClient,
  defaultRunId,
  runStatus,
  startEvaluation,
  waitForRun,
  type RunOutcome,
} from './cli/evaluations';
export type { EvaluationSummary, RunProgress } from './workflows/progress';
