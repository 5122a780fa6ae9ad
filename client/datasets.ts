/**
 * @file Datasets outside any run: `inspectDataset` loads a dataset exactly as planning does and
 * summarises it; `exportDatasetAsWebDataset` plans it in memory and writes it as CLIP_benchmark-
 * style WebDataset. Both talk to S3 only (no Temporal server, no worker) and write nothing but the
 * export.
 */
import type { ClipevalEnv } from '../core/config/env';
import { type DatasetSpec, type RunSpec, loadRunSpec } from '../core/config/run-spec';
import {
  type ExportWdsOptions,
  type ExportWdsResult,
  exportWebDataset,
} from '../core/dataset/export-wds';
import { type DatasetSummary, summarizeDataset } from '../core/dataset/inspect';
import { type LoadedDataset, loadDataset } from '../core/dataset/load';
import { buildPlan } from '../core/dataset/plan';
import { DatasetError } from '../core/dataset/types';
import { resolveTemplates } from '../core/routes/zero-shot/templates';
import { ObjectStore } from '../core/storage/object-store';
import { checkUriBucket } from './preflight';

export type { DatasetSummary } from '../core/dataset/inspect';
export type { ExportWdsResult } from '../core/dataset/export-wds';

/** Which dataset: `--dataset` (or the spec's dataset.uri), a run spec file, a format override. */
export interface DatasetRequest {
  uri?: string;
  specFile?: string;
  format?: DatasetSpec['format'];
}

/** The run spec as `clipeval run` builds it from --dataset and --spec, with --format applied. */
async function requestedSpec(req: DatasetRequest): Promise<RunSpec> {
  const spec = await loadRunSpec({
    ...(req.specFile ? { file: req.specFile } : {}),
    ...(req.uri !== undefined ? { datasetUri: req.uri } : {}),
  });
  if (req.format) spec.dataset.format = req.format;
  return spec;
}

/** The dataset as the planning activity loads it: the same limits and allowed sources. */
async function load(env: ClipevalEnv, dataset: DatasetSpec): Promise<LoadedDataset> {
  await checkUriBucket(env, dataset.uri, 'dataset');
  return loadDataset(ObjectStore.connect(env.s3), dataset, {
    limits: env.planning,
    sources: env.sources,
  });
}

/** What `dataset inspect` reports: the dataset, and whether a run with this spec would plan it. */
export type DatasetInspection = DatasetSummary & {
  /** buildPlan on the same spec: the images and shards a run would plan, or why it would refuse. */
  planning: { ok: true; images: number; shards: number } | { ok: false; error: string };
};

/** The dataset's format, classes, splits, counts, skipped objects, templates and sample keys. */
export async function inspectDataset(
  env: ClipevalEnv,
  req: DatasetRequest,
): Promise<DatasetInspection> {
  const spec = await requestedSpec(req);
  const data = await load(env, spec.dataset);
  return { ...summarizeDataset(spec.dataset.uri, data), planning: planningCheck(env, spec, data) };
}

/** A run's plan of the loaded dataset (nothing written), or the DatasetError it would fail with. */
function planningCheck(
  env: ClipevalEnv,
  spec: RunSpec,
  data: LoadedDataset,
): DatasetInspection['planning'] {
  try {
    const plan = buildPlan({ runId: 'inspect', spec, ...data, limits: env.planning });
    return { ok: true, images: plan.counts.total, shards: plan.shards.length };
  } catch (err) {
    if (!(err instanceof DatasetError)) throw err;
    return { ok: false, error: err.message };
  }
}

/**
 * Plans the dataset in memory (as a run would, from the same spec) and writes it under `out` as
 * WebDataset: classnames.txt holds the plan's classNames (the names prompts use, as
 * CLIP_benchmark's does), zeroshot_classification_templates.txt the templates the spec's
 * zeroShot.templates resolves to.
 */
export async function exportDatasetAsWebDataset(
  env: ClipevalEnv,
  req: DatasetRequest & { out: string },
  opts: Omit<ExportWdsOptions, 'maxImageBytes'>,
): Promise<ExportWdsResult> {
  const spec = await requestedSpec(req);
  await checkUriBucket(env, req.out, 'output (--out)');
  const data = await load(env, spec.dataset);
  const plan = buildPlan({
    runId: 'export-wds',
    spec: exportSpec(spec),
    ...data,
    limits: env.planning,
  });
  const templates = resolveTemplates(spec.zeroShot.templates, plan.dataset.templates);
  return exportWebDataset(
    ObjectStore.connect(env.s3),
    { plan, templates, out: req.out },
    { ...opts, maxImageBytes: env.limits.maxImageBytes },
  );
}

/**
 * The spec an export plans with: no route runs, so none of a run's route checks apply (a dataset
 * with a train split only still exports), and the largest shardSize, so the shard cap (Temporal
 * history, irrelevant here) never refuses a large dataset. Templates and class names are the spec's.
 */
function exportSpec(spec: RunSpec): RunSpec {
  return {
    ...spec,
    shardSize: 65536,
    zeroShot: { ...spec.zeroShot, enabled: false },
    coop: { ...spec.coop, enabled: false },
    probe: { ...spec.probe, enabled: false },
    tipAdapter: { ...spec.tipAdapter, enabled: false },
  };
}
