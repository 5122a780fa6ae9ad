import type { DatasetSpec } from '../../config/run-spec';
import type { ColumnNames } from './columns';

/**
 * The image, label and caption columns a Parquet dataset is read from
 * (dataset.imageColumn/labelColumn/captionColumn; captions only when captionColumn is set).
 */
export function parquetColumnNames(spec: DatasetSpec): ColumnNames {
  return {
    image: spec.imageColumn ?? 'image',
    label: spec.labelColumn ?? 'label',
    ...(spec.captionColumn ? { caption: spec.captionColumn } : {}),
  };
}
