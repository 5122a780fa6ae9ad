import type { S3Client } from '@aws-sdk/client-s3';
import type { RouteSummary } from './heads/route-result';
import { summarizeSeeds } from './heads/results';
import { keys } from './storage/keys';
import { putJson } from './storage/objects';

export interface SummarizeRunInput {
  runId: string;
  planUri: string;
  routes: RouteSummary[];
}

/** Mean and spread over seeds of one route at one shot count (CoOp's protocol reports these). */
export interface FewShotRow {
  route: 'coop' | 'probe';
  shots: number | 'all';
  seeds: number[];
  acc1: { mean: number; std: number };
  meanPerClassRecall: { mean: number; std: number };
  macroF1: { mean: number; std: number };
}
export type FewShotTable = FewShotRow[];

/**
 * Activity (cpu queue): writes runs/<runId>/summary.json (every route's metrics, the few-shot
 * table) and returns the few-shot table. Pure function of its input: idempotent.
 */
export function summarizeRunActivity(deps: { s3: S3Client; bucket: string }) {
  return async function summarizeRun(
    input: SummarizeRunInput,
  ): Promise<{ summaryUri: string; fewShot: FewShotTable }> {
    const fewShot = fewShotTable(input.routes);
    const key = keys.runSummary(input.runId);
    await putJson(deps.s3, deps.bucket, key, {
      runId: input.runId,
      plan: input.planUri,
      routes: input.routes,
      fewShot,
    });
    return { summaryUri: `s3://${deps.bucket}/${key}`, fewShot };
  };
}

export function fewShotTable(routes: readonly RouteSummary[]): FewShotTable {
  const groups = new Map<string, RouteSummary[]>();
  for (const r of routes) {
    if (r.route === 'zero-shot' || r.shots === undefined) continue;
    const id = `${r.route}\t${r.shots}`;
    groups.set(id, [...(groups.get(id) ?? []), r]);
  }
  const pick = (rs: RouteSummary[], f: (r: RouteSummary) => number) => {
    const s = summarizeSeeds(rs.map(f));
    return { mean: s.mean, std: s.std };
  };
  return [...groups.values()].map((rs) => ({
    route: rs[0]!.route as 'coop' | 'probe',
    shots: rs[0]!.shots!,
    seeds: rs.map((r) => r.seed ?? 0),
    acc1: pick(rs, (r) => r.acc1),
    meanPerClassRecall: pick(rs, (r) => r.meanPerClassRecall),
    macroF1: pick(rs, (r) => r.macroF1),
  }));
}
