/**
 * @file A semaphore counted in bytes: the per-worker budget for images in flight. Each image
 * being fetched or decoded holds a lease for the bytes it is estimated to need, and waits (first
 * come, first served) while the budget is spent. A request larger than the whole budget is
 * refused at once (it could never be granted), so the caller can skip that item with a reason.
 *
 * No lease ever waits while holding bytes: `resize` to more than is free gives its bytes back
 * and queues for the whole new amount, so holders cannot deadlock waiting on each other.
 */

/** The request can never fit: it is larger than the whole budget. */
export class OverBudgetError extends Error {
  override readonly name = 'OverBudgetError';
  constructor(
    readonly requested: number,
    readonly capacity: number,
  ) {
    super(
      `needs ${formatBytes(requested)}, more than the whole budget of ${formatBytes(capacity)}`,
    );
  }
}

export interface ByteLease {
  /** Bytes this lease holds now. */
  readonly bytes: number;
  /**
   * Changes the lease to `bytes`: at once when shrinking or when the extra bytes are free and
   * nobody is waiting; otherwise gives its bytes back and waits in line for all of `bytes`.
   */
  resize(bytes: number, signal?: AbortSignal): Promise<void>;
  /** Gives the bytes back (idempotent). */
  release(): void;
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class ByteBudget {
  private used = 0;
  private readonly queue: Waiter[] = [];
  /** The most bytes ever held at once (for tests and diagnostics). */
  peak = 0;

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError(`a byte budget must be positive, got ${capacity}`);
  }

  /** Bytes held by leases now. */
  get inUse(): number {
    return this.used;
  }

  /** Waits until `bytes` are free, then holds them; OverBudgetError if they never can be. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<ByteLease> {
    await this.take(bytes, signal);
    let held = bytes;
    const lease: ByteLease = {
      get bytes() {
        return held;
      },
      resize: async (next, sig) => {
        if (next <= held || (this.queue.length === 0 && this.used - held + next <= this.capacity)) {
          this.check(next);
          this.used += next - held;
          this.peak = Math.max(this.peak, this.used);
          held = next;
          this.drain();
          return;
        }
        this.check(next);
        this.give(held);
        held = 0;
        await this.take(next, sig);
        held = next;
      },
      release: () => {
        this.give(held);
        held = 0;
      },
    };
    return lease;
  }

  /** Runs fn while holding `bytes`. */
  async with<T>(
    bytes: number,
    fn: (lease: ByteLease) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const lease = await this.acquire(bytes, signal);
    try {
      return await fn(lease);
    } finally {
      lease.release();
    }
  }

  private check(bytes: number): void {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`invalid byte count ${bytes}`);
    if (bytes > this.capacity) throw new OverBudgetError(bytes, this.capacity);
  }

  private take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.check(bytes);
    signal?.throwIfAborted();
    if (this.queue.length === 0 && this.used + bytes <= this.capacity) {
      this.used += bytes;
      this.peak = Math.max(this.peak, this.used);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        const why: unknown = signal!.reason;
        reject(why instanceof Error ? why : new Error(String(why)));
        this.drain(); // the head may have been this waiter, blocking others
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private give(bytes: number): void {
    this.used -= bytes;
    this.drain();
  }

  /** Grants waiters in order while the head fits (first come, first served: no starvation). */
  private drain(): void {
    while (this.queue.length > 0 && this.used + this.queue[0]!.bytes <= this.capacity) {
      const w = this.queue.shift()!;
      this.used += w.bytes;
      this.peak = Math.max(this.peak, this.used);
      w.grant();
    }
  }
}

/** 1536 -> "1.5 KiB", for messages. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : Number(v.toFixed(1))} ${units[u]}`;
}
