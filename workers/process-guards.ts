/**
 * @file What a worker process does with an error nobody awaited. Node's default is to exit: one
 * rejected promise that no code was left to await (a read started for a batch that was then
 * abandoned) or one exception thrown from a callback would take the whole worker down, with
 * every activity it runs, and a restarted worker would pick the same shard up and die again.
 *
 * - `unhandledRejection`: logged (one JSON log line with the error) and the process keeps
 *   serving. A rejection nobody awaits has, by definition, no caller left whose state it could
 *   corrupt; the activity it belonged to fails or succeeds on its own awaited chain.
 * - `uncaughtException`: logged, and the process keeps serving too, because an exception thrown
 *   from a callback unwinds only that callback, and what a worker holds across activities is
 *   either Temporal's native core (unaffected) or caches of immutable loaded values (bundles,
 *   sessions, plans). Node warns that the process may be in an undefined state after one, so
 *   this is bounded: more than `maxUncaught` in `windowMs` means something is broken beyond one
 *   input, and the worker shuts down gracefully (stops polling, lets in-flight activities finish
 *   within the shutdown grace) and exits with code 1 for its supervisor to restart it.
 */

export type GuardLog = (
  level: 'error' | 'warn',
  message: string,
  meta: Record<string, unknown>,
) => void;

export interface ProcessGuardOptions {
  /** Writes one log line (the worker's logger: JSON lines on stderr by default). */
  log: GuardLog;
  /** Starts a graceful shutdown that ends with exit code 1. */
  onFatal: (reason: string) => void;
  /** Uncaught exceptions tolerated within `windowMs` (default 5 in 60 s). */
  maxUncaught?: number;
  windowMs?: number;
}

/** The error as plain JSON fields (name, message, stack, a cause's message). */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { value: String(err) };
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return {
    name: err.name,
    message: err.message,
    ...(err.stack ? { stack: err.stack } : {}),
    ...(cause !== undefined ? { cause } : {}),
  };
}

/** Installs the handlers on `process`; returns a function that removes them. */
export function installProcessGuards(opts: ProcessGuardOptions): () => void {
  const maxUncaught = opts.maxUncaught ?? 5;
  const windowMs = opts.windowMs ?? 60_000;
  const recent: number[] = [];
  let fatal = false;

  const log: GuardLog = (level, message, meta) => {
    try {
      opts.log(level, message, meta);
    } catch {
      // The logger itself failed: one plain JSON line, never a second throw from a handler.
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level, message, ...meta })}\n`,
      );
    }
  };

  const onRejection = (reason: unknown) => {
    log('error', 'clipeval worker: unhandled promise rejection (kept serving)', {
      origin: 'unhandledRejection',
      error: errorFields(reason),
    });
  };
  const onException = (err: unknown, origin: string) => {
    const now = Date.now();
    recent.push(now);
    while (recent.length > 0 && recent[0]! <= now - windowMs) recent.shift();
    const tooMany = recent.length > maxUncaught;
    log(
      'error',
      `clipeval worker: uncaught exception (${tooMany ? 'shutting down' : 'kept serving'})`,
      {
        origin,
        error: errorFields(err),
        uncaughtInWindow: recent.length,
      },
    );
    if (tooMany && !fatal) {
      fatal = true;
      opts.onFatal(`${recent.length} uncaught exceptions within ${windowMs / 1000} s`);
    }
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
