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
  cancelEvaluation,
  connectClient,
  defaultRunId,
  listEvaluations,
  resumeEvaluation,
  runStatus,
  startEvaluation,
  waitForRun,
  type ResumeResult,
  type RunListing,
  type RunOutcome,
} from './cli/evaluations';
export { EXIT, exitCodeOf } from './cli/exit-code';
export {
  createSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
  type CreateScheduleOptions,
  type ScheduleInfo,
} from './cli/schedules';
export type { Comparison, RouteDelta } from './activities/heads/compare';
export type { EvaluateDatasetInput } from './workflows/evaluate-dataset';
export type { EvaluationSummary, RunProgress } from './workflows/progress';
