import { heartbeat } from '@temporalio/activity';
import {
  type ReportDeps,
  type WriteReportInput,
  type WriteReportResult,
  writeRunReport,
} from '../core/report/write-report';

/**
 * Activity `writeReport` (cpu queue): writes runs/<runId>/report.html and report.json
 * (core/report/write-report.ts). Heartbeats once its inputs are read, before rendering.
 */
export function writeReportActivity(deps: ReportDeps) {
  return function writeReport(input: WriteReportInput): Promise<WriteReportResult> {
    return writeRunReport(deps, input, { heartbeat: (details) => heartbeat(details) });
  };
}
