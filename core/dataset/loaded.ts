/**
 * @file What every dataset format's loader returns, and what it is given: the one interface
 * behind ImageFolder, manifest, WebDataset and Parquet (core/dataset/load.ts picks the loader).
 */
import type { PlanningLimits } from '../config/run-limits';
import type { DatasetKind, Plan } from './plan';
import type { DatasetItem, SkippedObject } from './types';

export interface LoadedDataset {
  kind: DatasetKind;
  layout?: Plan['dataset']['layout'];
  items: DatasetItem[];
  skipped: SkippedObject[];
  /** The dataset's own label space in label-id order (classnames.txt, a ClassLabel), if it has one. */
  classes?: string[];
  /** Prompt templates the dataset ships (zeroshot_classification_templates.txt), if any. */
  templates?: string[];
}

/**
 * How far planning has got, for the activity's heartbeats: objects listed (the dataset's
 * prefix, or the manifest's folder), then, for a manifest, rows whose object was found (in the
 * listing or by a HEAD) out of all rows, and for WebDataset/Parquet, containers (tars, Parquet
 * files) indexed out of all.
 */
export interface PlanningProgress {
  objectsListed: number;
  rowsChecked?: number;
  rows?: number;
  containersRead?: number;
  containers?: number;
  /** Set while plan.json is being written. */
  writingPlan?: boolean;
}

/** What a container format's loader gets beside the listing. */
export interface ContainerLoadContext {
  limits: PlanningLimits;
  onProgress: (p: PlanningProgress) => void;
}
