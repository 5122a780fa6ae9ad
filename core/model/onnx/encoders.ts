import { BundleError, bundleFile, type ModelBundle } from '../bundle';
import { type ExecutionProvider, SessionThread, type TensorMessage } from './session-thread';
import { l2NormalizeRows } from '../../util/vectors';

export interface EncoderOptions {
  /** Tried in order; the first that loads is used (cuda only where its binaries are installed). */
  providers?: readonly ExecutionProvider[];
  /** ONNX Runtime intra-op threads for this session (default: all cores). */
  threads?: number;
  /** `int8` uses the bundle's dynamic-int8 graphs (exporter --int8): faster on CPU, less exact. */
  precision?: 'fp32' | 'fp16' | 'int8';
}

const DEFAULT_PROVIDERS: readonly ExecutionProvider[] = ['cpu'];

async function openGraph(
  bundle: ModelBundle,
  which: 'image' | 'text',
  opts: EncoderOptions,
): Promise<SessionThread> {
  const graph = bundle.manifest.graphs[which];
  const precision = opts.precision ?? 'fp32';
  // Never another graph in place of the one asked for (it would land in the wrong space).
  const variants = graph as { int8?: string; fp16?: string };
  const file = precision === 'fp32' ? graph.file : variants[precision];
  if (file === undefined) {
    throw new BundleError(
      `Bundle ${bundle.dir} has no ${precision} ${which} graph: re-export it with --${precision}, or use precision fp32 (extraction.imageGraph / CLIPEVAL_IMAGE_GRAPH)`,
    );
  }
  const thread = await SessionThread.start(bundleFile(bundle, file), {
    providers: opts.providers ?? DEFAULT_PROVIDERS,
    threads: opts.threads ?? 0, // 0: ONNX Runtime picks (all physical cores)
  });
  if (!thread.inputNames.includes(graph.input) || !thread.outputNames.includes(graph.output)) {
    await thread.close();
    throw new BundleError(
      `Bundle ${bundle.dir}: ${file} has inputs [${thread.inputNames.join(', ')}] and outputs ` +
        `[${thread.outputNames.join(', ')}], but bundle.json names ${graph.input} -> ${graph.output}. Re-export the bundle.`,
    );
  }
  return thread;
}

/** One graph in its session thread; the two encoders differ only in what they feed it. */
abstract class GraphEncoder {
  protected constructor(
    private readonly thread: SessionThread,
    protected readonly bundle: ModelBundle,
    private readonly which: 'image' | 'text',
  ) {}

  get provider(): ExecutionProvider {
    return this.thread.provider;
  }

  /** Runs the graph on one input tensor and L2-normalises the embeddings. */
  protected async embed(input: TensorMessage): Promise<Float32Array> {
    const g = this.bundle.manifest.graphs[this.which];
    const out = (await this.thread.run({ [g.input]: input }, [g.output]))[g.output]!;
    return l2NormalizeRows(out.data, this.bundle.manifest.architecture.embedDim);
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

/** Pixels (NCHW float32, preprocessed) to L2-normalised image embeddings [n, embedDim]. */
export class ImageEncoder extends GraphEncoder {
  static async create(bundle: ModelBundle, opts: EncoderOptions = {}): Promise<ImageEncoder> {
    return new ImageEncoder(await openGraph(bundle, 'image', opts), bundle, 'image');
  }

  /** `pixels` is transferred to the session's thread: the caller must not reuse it. */
  encode(pixels: Float32Array, n: number): Promise<Float32Array> {
    const s = this.bundle.manifest.preprocessing.imageSize;
    if (pixels.length !== n * 3 * s * s) {
      return Promise.reject(
        new Error(`expected ${n}x3x${s}x${s} pixels, got ${pixels.length} values`),
      );
    }
    return this.embed({ type: 'float32', data: pixels, dims: [n, 3, s, s] });
  }
}

/** Token ids ([n, length] int64, padded) to L2-normalised text embeddings [n, embedDim]. */
export class TextEncoder extends GraphEncoder {
  static async create(bundle: ModelBundle, opts: EncoderOptions = {}): Promise<TextEncoder> {
    return new TextEncoder(await openGraph(bundle, 'text', opts), bundle, 'text');
  }

  encode(ids: BigInt64Array, shape: [number, number]): Promise<Float32Array> {
    return this.embed({ type: 'int64', data: ids, dims: shape });
  }
}
