import {
  type ExecutionProvider,
  SessionThread,
  type TensorMessage,
} from '../../model/onnx/session-thread';
import { LOSS_GRAD_OUTPUTS, lossGradGraph, scoresGraph } from './graphs';

export interface LossGrad {
  /** Sum of the rows' cross-entropies, accumulated in float64. */
  loss: number;
  /** [dim, classes] */
  gradW: Float32Array;
  /** [classes] */
  gradB: Float32Array;
}

/**
 * The probe's ONNX Runtime side: the loss/gradient graph and the scores graph, each in its own
 * worker thread (session.run blocks the thread it runs on; Temporal heartbeats need the main
 * loop). The training matrix and its targets, and the matrix being scored, are cached in their
 * threads (SessionThread.cacheFeeds), so an L-BFGS iteration sends only W and b (D*K floats)
 * instead of the whole N x D matrix.
 */
export class ProbeGraph {
  private trainRows = 0;
  private scoreRows = 0;

  private constructor(
    private readonly lossThread: SessionThread,
    private readonly scoresThread: SessionThread,
  ) {}

  static async start(opts: {
    providers?: readonly ExecutionProvider[];
    threads?: number;
  }): Promise<ProbeGraph> {
    const sessionOpts = { providers: opts.providers ?? ['cpu'], threads: opts.threads ?? 0 };
    const lossThread = await SessionThread.start(lossGradGraph(), sessionOpts);
    try {
      return new ProbeGraph(lossThread, await SessionThread.start(scoresGraph(), sessionOpts));
    } catch (err) {
      await lossThread.close();
      throw err;
    }
  }

  get provider(): ExecutionProvider {
    return this.lossThread.provider;
  }

  /**
   * Caches the training rows [n, dim] (copied) and one-hot targets [n, classes] (transferred:
   * the caller gives them up).
   */
  async setTrainingData(x: Float32Array, targets: Float32Array, n: number, dim: number) {
    const classes = targets.length / n;
    this.trainRows = n;
    await this.lossThread.cacheFeeds({
      X: { type: 'float32', data: await copyInSlices(x), dims: [n, dim] },
      targets: { type: 'float32', data: targets, dims: [n, classes] },
    });
  }

  /** Loss and gradient over the cached training rows. */
  async lossGrad(w: Float32Array, b: Float32Array): Promise<LossGrad> {
    if (this.trainRows === 0) throw new Error('ProbeGraph: no training data cached');
    return this.runLossGrad({}, w, b);
  }

  /**
   * Loss and gradient over the given rows (a mini-batch), leaving the cache alone. `x` and
   * `targets` are transferred to the thread: pass buffers you don't reuse.
   */
  lossGradRows(
    x: Float32Array,
    targets: Float32Array,
    n: number,
    w: Float32Array,
    b: Float32Array,
  ) {
    const dim = x.length / n;
    return this.runLossGrad(
      {
        X: { type: 'float32', data: x, dims: [n, dim] },
        targets: { type: 'float32', data: targets, dims: [n, targets.length / n] },
      },
      w,
      b,
    );
  }

  /** Caches the rows [n, dim] that scores() evaluates (copied). */
  async setScoringData(x: Float32Array, n: number, dim: number) {
    this.scoreRows = n;
    await this.scoresThread.cacheFeeds({
      X: { type: 'float32', data: await copyInSlices(x), dims: [n, dim] },
    });
  }

  /** Logits [n, classes] of the cached scoring rows. */
  async scores(w: Float32Array, b: Float32Array): Promise<Float32Array> {
    if (this.scoreRows === 0) return new Float32Array(0);
    const out = await this.scoresThread.run(
      {
        W: { type: 'float32', data: w.slice(), dims: [w.length / b.length, b.length] },
        b: { type: 'float32', data: b.slice(), dims: [b.length] },
      },
      ['logits'],
    );
    return out.logits!.data;
  }

  async close(): Promise<void> {
    await Promise.all([this.lossThread.close(), this.scoresThread.close()]);
  }

  private async runLossGrad(
    rows: Record<string, TensorMessage>,
    w: Float32Array,
    b: Float32Array,
  ): Promise<LossGrad> {
    // A worker's replies arriving back to back are all handled in one pass of the event loop,
    // so a fast run of mini-batch steps would starve timers and I/O (heartbeats) for 100+ ms:
    // each call first lets the loop go round once.
    await nextTurn();
    const out = await this.lossThread.run(
      {
        ...rows,
        // Copies: run() transfers its input buffers to the thread.
        W: { type: 'float32', data: w.slice(), dims: [w.length / b.length, b.length] },
        b: { type: 'float32', data: b.slice(), dims: [b.length] },
      },
      LOSS_GRAD_OUTPUTS.filter((name) => name !== 'loss'),
    );
    let loss = 0;
    for (const v of out.row_loss!.data) loss += v;
    return { loss, gradW: out.grad_W!.data, gradB: out.grad_b!.data };
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A copy of a large matrix, made 8 MB at a time so the event loop is never held for long. */
async function copyInSlices(src: Float32Array): Promise<Float32Array> {
  const out = new Float32Array(src.length);
  const slice = 1 << 21;
  for (let i = 0; i < src.length; i += slice) {
    out.set(src.subarray(i, i + slice), i);
    await nextTurn();
  }
  return out;
}
