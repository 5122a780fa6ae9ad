/**
 * @file Claims on keys within one process: the first caller to claim a key holds it until it
 * releases it, and others learn when it does. The pixel cache uses it so that two extractions on
 * one worker needing the same block (a suite's models over one dataset, at the same time) decode
 * it once: the second waits for the first to write the block, then reads it.
 */
export class Claims {
  private readonly held = new Map<string, Promise<void>>();

  /** A release function when `key` was free (now held), else undefined. */
  tryClaim(key: string): (() => void) | undefined {
    if (this.held.has(key)) return undefined;
    let release!: () => void;
    this.held.set(key, new Promise<void>((resolve) => (release = resolve)));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held.delete(key);
      release();
    };
  }

  /** Resolves once `key` is not held (at once when it is not held now). */
  released(key: string): Promise<void> {
    return this.held.get(key) ?? Promise.resolve();
  }

  isHeld(key: string): boolean {
    return this.held.has(key);
  }
}
