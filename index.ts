// clipeval's programmatic API, for services that trigger and watch evaluation runs.
export { loadEnv, loadStackEnvDefaults, type ClipevalEnv } from './core/config/env';
export { ConfigError } from './core/config/errors';
export { loadRunSpec, parseRunSpec, type RunSpec, type RunSpecInput } from './core/config/run-spec';
export type { Plan, PlanSummary } from './core/dataset/plan';
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
} from './client/evaluations';
export {
  exportDatasetAsWebDataset,
  inspectDataset,
  type DatasetInspection,
  type DatasetRequest,
  type ExportWdsResult,
} from './client/datasets';
export { EXIT, exitCodeOf } from './client/exit-codes';
export {
  cancelSuite,
  checkSuiteInputs,
  defaultSuiteId,
  listSuites,
  resumeSuite,
  startSuite,
  suiteExitCode,
  suiteStatus,
  waitForSuite,
  type SuiteListing,
  type SuiteOutcome,
  type SuiteResumeResult,
} from './client/suites';
export {
  loadSuiteSpec,
  parseSuiteSpec,
  type SuiteSpec,
  type SuiteSpecInput,
} from './core/config/suite-spec';
export type { Leaderboard } from './core/suites/leaderboard';
export {
  createSchedule,
  createSuiteSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
  type CreateScheduleOptions,
  type ScheduleInfo,
} from './client/schedules';
export type { Comparison, RouteDelta } from './core/runs/compare';
export type { EvaluateDatasetInput } from './workflows/evaluate-dataset';
export type { EvaluateSuiteInput } from './workflows/evaluate-suite';
export type {
  EvaluationSummary,
  FailedCell,
  RunProgress,
  SuiteProgress,
  SuiteSummary,
} from './contract/progress';
