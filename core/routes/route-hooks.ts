/**
 * @file What a long-running core function needs from whoever runs it (a Temporal activity, a
 * bench, a test), as plain callbacks: core code stays free of Temporal, and the activity adapter
 * wires these to heartbeat(), the cancellation signal, the activity logger and its metrics.
 */

export interface RunLog {
  info(message: string, meta?: Record<string, unknown>): void;
}

export interface RunHooks<Progress> {
  /**
   * Called often (per batch, iteration or step): proof of life for the heartbeat timeout, and
   * where the work stands. A property, not a method, so the compiler checks the details' type
   * against the adapter's contract (strict function types).
   */
  heartbeat: (details: Progress) => void;
  /** Aborted when the run is cancelled: long loops stop between steps without writing. */
  signal?: AbortSignal;
  log?: RunLog;
}
