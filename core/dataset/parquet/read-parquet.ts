import type { ObjectStore } from '../../storage/object-store';
import type { PartReader } from '../parts';
import type { PlanItem } from '../plan';

// IN PROGRESS (issue 14): replaced by the real reader.
export function parquetPartReader(store: ObjectStore, items: readonly PlanItem[]): PartReader {
  throw new Error('not implemented yet');
}
