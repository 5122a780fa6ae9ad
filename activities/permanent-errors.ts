/**
 * @file The one way an activity fails permanently: every registered activity is wrapped here,
 * and any PermanentError (core/util/errors.ts) it throws becomes a non-retryable
 * ApplicationFailure of the same name and message. Everything else (S3 hiccups, a lost worker)
 * stays retryable under the stage's retry policy (workflows/activity-stubs.ts).
 */
import { ApplicationFailure } from '@temporalio/common';
import { PermanentError } from '../core/util/errors';

export function failFastOnPermanentErrors<A extends unknown[], R>(
  activity: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  const wrapped = async (...args: A): Promise<R> => {
    try {
      return await activity(...args);
    } catch (err) {
      if (err instanceof PermanentError)
        throw ApplicationFailure.nonRetryable(err.message, err.name);
      throw err;
    }
  };
  // Temporal registers an activity under its property name; keep the function's own name too.
  Object.defineProperty(wrapped, 'name', { value: activity.name });
  return wrapped;
}

/** Wraps every activity of a worker's set. */
export function withPermanentErrors<
  T extends Record<string, (...args: never[]) => Promise<unknown>>,
>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      failFastOnPermanentErrors(fn as (...args: unknown[]) => Promise<unknown>),
    ]),
  ) as unknown as T;
}
