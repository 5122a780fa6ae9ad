import type { DatasetSpec } from '../../config/run-spec';
import type { ColumnNames } from './columns';

/** The image and label columns a Parquet dataset is read from (dataset.imageColumn/labelColumn). */
export function parquetColumnNames(spec: DatasetSpec): ColumnNames {
  return { image: spec.imageColumn ?? 'image', label: spec.labelColumn ?? 'label' };
}
