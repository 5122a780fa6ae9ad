/**
 * @file A pool of worker threads for the CPU-heavy pixel steps after decoding: the Pillow-exact
 * resize + center crop, the augmented views and the normalisation (./pixels.ts `preprocessInto`),
 * about 1.5 ms per 640x480 image (6 ms before the resampler's SIMD kernels) that would otherwise
 * hold the main thread, where Temporal's heartbeats and cancellation run. sharp's decode already runs in libuv's pool and stays on the
 * main thread's side; the decoded RGB goes to a pool thread (moved where it can be; sharp's own
 * buffers Node copies, and those are kept here for a retry), which returns the image's normalised
 * crops as one transferred Float32Array slab that embedImages copies into the batch (or, when
 * `params.format` is uint8-nhwc, the crops' bytes as one Uint8Array slab: no normalisation).
 *
 * The threads load ./pixels.ts itself (../../util/eval-thread.ts), so their output is the main
 * thread's, bit for bit. Each thread runs one job at a time, so a thread that dies (an uncaught
 * error, out of memory, terminated) is known to have died on that job: the job is retried once
 * on a fresh thread when its pixels were kept, and otherwise (moved, or a second death) fails as
 * that image's error (PreprocessFailedError); the thread is replaced. An error thrown by
 * the code fails the job at once. Threads start on demand, hold the process open only while they
 * have a job, and are ended by close().
 */
import type { Worker } from 'node:worker_threads';
import { modulePath, startEvalThread } from '../../util/eval-thread';
import type { PixelBuffer, PreprocessParams, RgbImage, ViewSpec } from './pixels';

/** An image the pool could not preprocess (a thread's error, or a thread dying twice on it). */
export class PreprocessFailedError extends Error {
  override readonly name = 'PreprocessFailedError';
}

// Plain JavaScript evaluated in each thread; loadModule comes from eval-thread.ts.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const pixels = loadModule(workerData.pixelsModule);
parentPort.on('message', (job) => {
  let out;
  try {
    const size = 3 * job.params.imageSize * job.params.imageSize;
    const length = (1 + (job.spec ? job.spec.views : 0)) * size;
    out = job.params.format === 'uint8-nhwc' ? new Uint8Array(length) : new Float32Array(length);
    pixels.preprocessInto(job.src, job.params, job.spec, out, 0);
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err && err.message ? err.message : String(err) });
    return;
  }
  parentPort.postMessage({ id: job.id, out }, [out.buffer]);
});
`;

interface Job {
  id: number;
  src: RgbImage;
  params: PreprocessParams;
  spec: ViewSpec | undefined;
  /** Times a thread died running it. */
  crashes: number;
  /** False once its pixels were moved to a thread (a crash then fails it: no retry). */
  retryable: boolean;
  resolve: (out: PixelBuffer) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  job: Job | undefined;
  /** Set once its exit is expected (close) or handled: its job is not retried twice. */
  gone: boolean;
}

export class DecodePool {
  private readonly threads: Thread[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  /** `size` threads at most (>= 1), started as jobs arrive. */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`a decode pool needs 1 or more threads, not ${size}`);
  }

  /**
   * The normalised center crop of `src`, then its `spec.views` augmented views: (1 + views)
   * crops of 3 x S x S floats (bytes, HWC, for params.format uint8-nhwc), as `preprocessInto`
   * makes them. Rejects with a PreprocessFailedError when the image cannot be preprocessed.
   */
  preprocess(src: RgbImage, params: PreprocessParams, spec?: ViewSpec): Promise<PixelBuffer> {
    if (this.closed) return Promise.reject(new Error('the decode pool is closed'));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.queue.push({ id, src, params, spec, crashes: 0, retryable: true, resolve, reject });
      this.dispatch();
    });
  }

  /** Threads running now (started on demand; fewer than `size` while idle). */
  get running(): number {
    return this.threads.length;
  }

  /** Ends every thread; jobs not finished reject. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('the decode pool was closed');
    for (const job of this.queue.splice(0)) job.reject(err);
    const threads = this.threads.splice(0);
    for (const t of threads) {
      t.gone = true;
      t.job?.reject(err);
      t.job = undefined;
    }
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  /**
   * Ends thread `index` as a crash would (tests: the job it runs is retried on a fresh thread).
   */
  async killThreadForTest(index: number): Promise<void> {
    await this.threads[index]?.worker.terminate();
  }

  /** Hands queued jobs to idle threads, starting threads up to `size`. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let thread = this.threads.find((t) => !t.job);
      if (!thread) {
        if (this.threads.length >= this.size) return;
        thread = this.start();
      }
      const job = this.queue.shift()!;
      thread.job = job;
      thread.worker.ref();
      const { id, src, params, spec } = job;
      try {
        // Moved, not copied, where the buffer can be: a whole buffer of ours (sharp's are
        // copied by Node: external memory cannot be moved). A view of part of a buffer is
        // sliced first (its whole buffer would go).
        const whole =
          src.data.byteOffset === 0 && src.data.byteLength === src.data.buffer.byteLength;
        const data = whole ? src.data : src.data.slice();
        const message = { id, src: { data, width: src.width, height: src.height }, params, spec };
        try {
          // (Shared memory is shared, not moved.)
          thread.worker.postMessage(
            message,
            data.buffer instanceof ArrayBuffer ? [data.buffer] : [],
          );
        } catch {
          // An untransferable buffer: Node 20 copies it, later versions refuse. Copied then.
          thread.worker.postMessage(message);
        }
        // Moved: nothing is left to retry with. Copied: the job keeps the pixels for a retry.
        if (src.data.byteLength === 0) job.retryable = false;
      } catch (err) {
        thread.job = undefined;
        thread.worker.unref();
        job.reject(new PreprocessFailedError(`preprocess-failed: ${(err as Error).message}`));
      }
    }
  }

  private start(): Thread {
    const worker = startEvalThread(THREAD_SOURCE, {
      pixelsModule: modulePath(__filename, 'pixels'),
    });
    const thread: Thread = { worker, job: undefined, gone: false };
    worker.unref();
    worker.on('message', (m: { id: number; out?: PixelBuffer; error?: string }) => {
      const job = thread.job;
      if (!job || job.id !== m.id) return;
      thread.job = undefined;
      worker.unref();
      if (m.error !== undefined)
        job.reject(new PreprocessFailedError(`preprocess-failed: ${m.error}`));
      else job.resolve(m.out!);
      this.dispatch();
    });
    // An uncaught error ends the thread: 'exit' follows and handles its job.
    let error: Error | undefined;
    worker.on('error', (err) => (error = err));
    worker.on('exit', (code) => this.lost(thread, code, error));
    this.threads.push(thread);
    return thread;
  }

  /** A thread ended: unless closing, its job is retried once on a new thread, then fails. */
  private lost(thread: Thread, code: number, error: Error | undefined): void {
    if (thread.gone) return;
    thread.gone = true;
    const at = this.threads.indexOf(thread);
    if (at >= 0) this.threads.splice(at, 1);
    const job = thread.job;
    thread.job = undefined;
    if (job) {
      job.crashes++;
      const why = error ? error.message : `exit code ${code}`;
      if (!job.retryable)
        job.reject(new PreprocessFailedError(`preprocess-failed: the decode thread died (${why})`));
      else if (job.crashes >= 2)
        job.reject(
          new PreprocessFailedError(
            `preprocess-failed: the decode thread died twice on it (${why})`,
          ),
        );
      else this.queue.unshift(job);
    }
    if (!this.closed) this.dispatch();
  }
}
