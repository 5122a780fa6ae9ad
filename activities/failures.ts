import { ApplicationFailure } from '@temporalio/common';

/**
 * Errors that no retry can fix (bad data, a broken bundle, mixed embedding spaces, a diverged
 * training): activities rethrow them as non-retryable failures named after the error, so the
 * run fails at once with the message instead of retrying for hours.
 */
const PERMANENT = new Set([
  'BundleError',
  'ConfigError',
  'DatasetError',
  'EmbeddingSpaceError',
  'CoopDivergedError',
  'PlanError',
]);

export async function failPermanentErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof Error && !(err instanceof ApplicationFailure) && PERMANENT.has(err.name)) {
      throw ApplicationFailure.nonRetryable(err.message, err.name);
    }
    throw err;
  }
}

export const PERMANENT_ERROR_TYPES = [...PERMANENT];
