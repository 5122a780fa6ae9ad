/**
 * @file One ONNX Runtime InferenceSession living in its own worker thread. `session.run()` blocks
 * the thread it runs on for the whole computation; Temporal heartbeats and cancellation run on the
 * main event loop, so sessions must not live there. Calls are serialised: a session runs one call
 * at a time.
 */
import type { Worker } from 'node:worker_threads';
import { startEvalThread } from '../../util/eval-thread';
import { usableProviders } from './cuda-provider';

export type ExecutionProvider = 'cuda' | 'webgpu' | 'cpu';

export type TensorMessage =
  | { type: 'float32'; data: Float32Array; dims: number[] }
  | { type: 'int64'; data: BigInt64Array; dims: number[] }
  /** Image bytes (uint8 NHWC graphs): a quarter of the float32 tensor's bytes cross threads. */
  | { type: 'uint8'; data: Uint8Array; dims: number[] };

/** An output tensor (float32: every graph clipeval runs returns float32). */
export interface OutputTensor {
  data: Float32Array;
  dims: number[];
}

// Plain JavaScript evaluated in the thread (../../util/eval-thread.ts: the same in tests, tsx, dist).
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
let chain = Promise.resolve();
// Feeds kept between calls (cacheFeeds): added to every run whose own feeds don't name them.
const cached = {};
(async () => {
  const failures = [];
  for (const ep of workerData.providers) {
    try {
      session = await ort.InferenceSession.create(workerData.model, {
        executionProviders: [ep],
        intraOpNumThreads: workerData.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        extra: workerData.extra,
      });
      parentPort.postMessage({ type: 'ready', provider: ep, inputNames: session.inputNames, outputNames: session.outputNames, failures });
      return;
    } catch (err) {
      failures.push(ep + ': ' + (err && err.message ? err.message.split('\\n')[0] : String(err)));
    }
  }
  parentPort.postMessage({ type: 'failed', failures });
})();
parentPort.on('message', (msg) => {
  chain = chain.then(async () => {
    try {
      if (msg.cache) {
        for (const name of msg.cache.drop ?? Object.keys(cached)) delete cached[name];
        for (const [name, t] of Object.entries(msg.cache.keep)) cached[name] = new ort.Tensor(t.type, t.data, t.dims);
        parentPort.postMessage({ id: msg.id, outputs: {} });
        return;
      }
      const feeds = { ...cached };
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = await session.run(feeds, msg.outputs);
      const outputs = {};
      const transfer = [];
      for (const name of msg.outputs) {
        const t = results[name];
        outputs[name] = { data: t.data, dims: t.dims };
        transfer.push(t.data.buffer);
      }
      // The inputs' buffers go back (moved, not copied) for the caller to fill again: a batch
      // loop then allocates no new input buffer per batch. The session is done with them.
      const inputs = {};
      for (const [name, t] of Object.entries(msg.feeds)) {
        inputs[name] = t.data;
        transfer.push(t.data.buffer);
      }
      parentPort.postMessage({ id: msg.id, outputs, inputs }, [...new Set(transfer)]);
    } catch (err) {
      parentPort.postMessage({ id: msg.id, error: err && err.message ? err.message : String(err) });
    }
  });
});
`;

/** A run's outputs, and its input buffers handed back (empty after cacheFeeds and the like). */
export interface RunResult {
  outputs: Record<string, OutputTensor>;
  inputs: Record<string, TensorMessage['data']>;
}

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

export class SessionThread {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    readonly provider: ExecutionProvider,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {
    worker.on(
      'message',
      (m: {
        id: number;
        outputs?: Record<string, OutputTensor>;
        inputs?: RunResult['inputs'];
        error?: string;
      }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(`ONNX Runtime: ${m.error}`));
        else p.resolve({ outputs: m.outputs!, inputs: m.inputs ?? {} });
      },
    );
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => this.failAll(new Error('ONNX Runtime thread exited')));
  }

  /**
   * Starts a thread and creates the session with the first execution provider that works.
   * `model` is a graph file's path or the graph's bytes (graphs clipeval builds itself).
   */
  static async start(
    model: string | Uint8Array,
    opts: {
      providers: readonly ExecutionProvider[];
      threads: number;
      /** ONNX Runtime graph optimizers to leave out (by name), e.g. one a graph is known to crash. */
      disabledOptimizers?: readonly string[];
    },
  ): Promise<SessionThread> {
    // cuda is checked here first: when it cannot load, ONNX Runtime says only "Failed to load
    // shared library", and a cuda-only session must fail before the thread starts.
    const fallbacks: string[] = [];
    const providers = usableProviders(opts.providers, (m) => fallbacks.push(m));
    const worker = startEvalThread(THREAD_SOURCE, {
      ortPath: require.resolve('onnxruntime-node'),
      model,
      providers,
      threads: opts.threads,
      extra: sessionConfig(opts.disabledOptimizers ?? []),
    });
    type Ready = {
      type: 'ready';
      provider: ExecutionProvider;
      inputNames: string[];
      outputNames: string[];
      failures: string[];
    };
    type Failed = { type: 'failed'; failures: string[] };
    const first = await new Promise<Ready | Failed>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (first.type === 'failed') {
      await worker.terminate();
      throw new Error(
        `No execution provider could load ${typeof model === 'string' ? model : 'the graph'}: ${[...fallbacks, ...first.failures].join('; ')}`,
      );
    }
    for (const f of fallbacks) console.warn(`clipeval: ${f}`);
    for (const f of first.failures)
      console.warn(`clipeval: execution provider unavailable, falling back (${f})`);
    return new SessionThread(worker, first.provider, first.inputNames, first.outputNames);
  }

  /**
   * Runs the session and returns the named outputs. Input buffers are transferred to the
   * thread, so the caller must not reuse them (pass a copy to keep one).
   */
  async run(
    feeds: Record<string, TensorMessage>,
    outputs: readonly string[],
  ): Promise<Record<string, OutputTensor>> {
    return (await this.runReturningInputs(feeds, outputs)).outputs;
  }

  /** run(), and the input buffers back once the session is done with them (to be refilled). */
  runReturningInputs(
    feeds: Record<string, TensorMessage>,
    outputs: readonly string[],
  ): Promise<RunResult> {
    return this.post({ feeds, outputs }, feeds);
  }

  private post(message: object, transferred: Record<string, TensorMessage>): Promise<RunResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const transfer = [
        ...new Set(Object.values(transferred).map((t) => t.data.buffer as ArrayBuffer)),
      ];
      this.worker.postMessage({ id, ...message }, transfer);
    });
  }

  /**
   * Keeps these feeds in the thread: every later run() gets them unless its own feeds name them
   * (so a large input, e.g. a probe's training matrix, crosses threads once instead of per call).
   * Buffers are transferred, as in run(). Replaces a cached feed of the same name.
   */
  async cacheFeeds(feeds: Record<string, TensorMessage>): Promise<void> {
    await this.post({ cache: { keep: feeds, drop: Object.keys(feeds) } }, feeds);
  }

  /** Forgets the named cached feeds, or all of them. */
  async dropCachedFeeds(names?: readonly string[]): Promise<void> {
    await this.post({ cache: { keep: {}, drop: names ?? null } }, {});
  }

  async close(): Promise<void> {
    this.pending.clear();
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/**
 * ONNX Runtime session config entries (onnxruntime-node flattens `extra` into dotted keys).
 * Intra-op threads do not spin while waiting for work: on a small machine a spinning thread
 * takes the core the decoders and the event loop need between batches (bench/extract.ts's split),
 * and a batch of CLIP images is long enough that waking a thread costs nothing measurable.
 */
function sessionConfig(disabledOptimizers: readonly string[]) {
  return {
    session: {
      intra_op: { allow_spinning: process.env.CLIPEVAL_ORT_SPINNING === '1' ? '1' : '0' },
    },
    ...(disabledOptimizers.length
      ? { optimization: { disable_specified_optimizers: disabledOptimizers.join(',') } }
      : {}),
  };
}
