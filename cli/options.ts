import { UsageError } from '../client/errors';

/** A command-line option that must be a positive integer (`--limit 20`), or a UsageError naming it. */
export function positiveInteger(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${option} must be a positive integer, got "${value}"`);
  return n;
}
