import type { DatasetSpec } from '../../config/run-spec';
import type { ListedObject, ObjectStore } from '../../storage/object-store';
import type { ContainerLoadContext, LoadedDataset } from '../loaded';

// IN PROGRESS (issue 14): replaced by the real loader.
export async function loadParquet(
  data: ObjectStore,
  prefix: string,
  listing: readonly ListedObject[],
  spec: DatasetSpec,
  context: ContainerLoadContext,
): Promise<LoadedDataset> {
  throw new Error('not implemented yet');
}
