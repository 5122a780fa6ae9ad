import { createHash } from 'node:crypto';

/**
 * sha256 of a JSON value: names "everything this result depends on" so results can be reused
 * exactly when their inputs are unchanged. Callers build the value with a fixed key order.
 */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}
