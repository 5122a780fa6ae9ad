/** Bad input or an unreachable service: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The deepest cause's message: Temporal wraps an activity's error in two or three layers. */
export function rootMessage(err: unknown): string {
  type Chain = { message?: string; cause?: Chain } | undefined;
  let e = err as Chain;
  while (e?.cause?.message) e = e.cause;
  return e?.message ?? String(err);
}
