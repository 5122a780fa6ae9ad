/** Bad input or an unreachable service: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The deepest cause's message: Temporal wraps an activity's error in two or three layers. */
export function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause && (e.cause as { message?: string }).message) {
    e = e.cause as { message?: string; cause?: unknown };
  }
  return e?.message ?? String(err);
}
