import {
  BundleError,
  bundleFile,
  type GraphVariant,
  type ModelBundle,
  type PixelFormat,
} from '../bundle';
import { type ExecutionProvider, SessionThread, type TensorMessage } from './session-thread';
import { l2NormalizeRows } from '../../util/vectors';
import type { PixelBuffer } from '../image/pixels';
import type { ImageGraph } from '../../config/run-spec';

export type { PixelFormat } from '../bundle';

export interface EncoderOptions {
  /** Tried in order; the first that loads is used (cuda only where its binaries are installed). */
  providers?: readonly ExecutionProvider[];
  /** ONNX Runtime intra-op threads for this session (default: all cores). */
  threads?: number;
  /**
   * fp32 (default) or a faster, less exact graph: int8 (exporter --int8; CPUs) or fp16 (image
   * only; GPU providers; see docs/model-bundles.md). Image graphs taking uint8 pixels are
   * preferred where the bundle has them.
   */
  precision?: ImageGraph;
  /**
   * Image graphs: the input format to insist on (default: uint8-nhwc where the bundle has it,
   * else float32-nchw). float32-nchw selects the reference float graph (fp32, int8).
   */
  inputFormat?: PixelFormat;
}

const DEFAULT_PROVIDERS: readonly ExecutionProvider[] = ['cpu'];

/**
 * The graph a precision selects: the image tower's uint8-input variant when the bundle has one,
 * else (bundles exported before the variants, fp32 and int8 only) the float32 NCHW graph.
 */
export function selectGraph(
  bundle: ModelBundle,
  which: 'image' | 'text',
  opts: Pick<EncoderOptions, 'precision' | 'inputFormat'> = {},
): GraphVariant {
  const { precision = 'fp32', inputFormat } = opts;
  const graph = bundle.manifest.graphs[which];
  const variant = which === 'image' ? graph.variants?.[precision] : undefined;
  if (variant && (inputFormat ?? variant.inputFormat) === variant.inputFormat) return variant;
  if (inputFormat === 'uint8-nhwc')
    throw new BundleError(
      `Bundle ${bundle.dir} has no ${precision} ${which} graph taking uint8-nhwc pixels: ` +
        're-export it with infra/exporter/export.py, or leave the input format to the encoder',
    );
  const floatGraph = { input: graph.input, output: graph.output, inputFormat: 'float32-nchw' };
  if (precision === 'fp32') return { ...floatGraph, file: graph.file } as GraphVariant;
  if (precision === 'int8' && graph.int8 !== undefined)
    return { ...floatGraph, file: graph.int8 } as GraphVariant;
  const how =
    precision === 'int8'
      ? 're-export it with --int8'
      : which !== 'image'
        ? 'fp16 graphs exist for the image tower only'
        : 're-export it with infra/exporter/export.py (every export writes one; OpenCLIP exports before fp16 support did not)';
  // Runs choose the graph in their spec or through the planning worker's environment: say where.
  throw new BundleError(
    `Bundle ${bundle.manifest.name} (${bundle.dir}) has no ${precision} ${which} graph: ${how}, ` +
      'or use precision fp32 (extraction.imageGraph in the run spec, else CLIPEVAL_IMAGE_GRAPH)',
  );
}

/**
 * Left out of fp16 graphs' sessions: ONNX Runtime's NCHWc layout transformer (CPU provider only)
 * crashes the process (SIGSEGV, ORT 1.30 and 1.31) creating a session on an OpenCLIP fp16 image
 * graph, where the fp16 converter wraps the attention in Casts. fp16 graphs are meant for GPU
 * providers, where the transformer does not apply; for fp32 and int8 graphs it stays on (it
 * speeds up ResNet towers on CPUs).
 */
const FP16_DISABLED_OPTIMIZERS = ['NchwcTransformer'];

async function openGraph(
  bundle: ModelBundle,
  graph: GraphVariant,
  opts: EncoderOptions,
): Promise<SessionThread> {
  const thread = await SessionThread.start(bundleFile(bundle, graph.file), {
    providers: opts.providers ?? DEFAULT_PROVIDERS,
    threads: opts.threads ?? 0, // 0: ONNX Runtime picks (all physical cores)
    ...(opts.precision === 'fp16' ? { disabledOptimizers: FP16_DISABLED_OPTIMIZERS } : {}),
  });
  if (!thread.inputNames.includes(graph.input) || !thread.outputNames.includes(graph.output)) {
    await thread.close();
    throw new BundleError(
      `Bundle ${bundle.dir}: ${graph.file} has inputs [${thread.inputNames.join(', ')}] and outputs ` +
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
    protected readonly graph: GraphVariant,
  ) {}

  get provider(): ExecutionProvider {
    return this.thread.provider;
  }

  /** Runs the graph on one input tensor; L2-normalised embeddings, and the input's buffer back. */
  protected async embed<T extends TensorMessage['data']>(
    input: TensorMessage,
  ): Promise<{ embeddings: Float32Array; input: T }> {
    const { input: name, output } = this.graph;
    const r = await this.thread.runReturningInputs({ [name]: input }, [output]);
    const embeddings = l2NormalizeRows(
      r.outputs[output]!.data,
      this.bundle.manifest.architecture.embedDim,
    );
    return { embeddings, input: r.inputs[name] as T };
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

/**
 * Pixels to L2-normalised image embeddings [n, embedDim]. `inputFormat` says what `encode` takes:
 * float32-nchw (normalised, [n, 3, S, S]) or uint8-nhwc (the center crops' bytes, [n, S, S, 3];
 * the graph normalises them).
 */
export class ImageEncoder extends GraphEncoder {
  static async create(bundle: ModelBundle, opts: EncoderOptions = {}): Promise<ImageEncoder> {
    const graph = selectGraph(bundle, 'image', opts);
    return new ImageEncoder(await openGraph(bundle, graph, opts), bundle, graph);
  }

  get inputFormat(): PixelFormat {
    return this.graph.inputFormat;
  }

  /** A zeroed batch buffer for `n` images in this encoder's input format. */
  allocate(n: number): PixelBuffer {
    const s = this.bundle.manifest.preprocessing.imageSize;
    return this.inputFormat === 'uint8-nhwc'
      ? new Uint8Array(n * s * s * 3)
      : new Float32Array(n * 3 * s * s);
  }

  /** `pixels` is transferred to the session's thread: the caller must not reuse it. */
  async encode(pixels: PixelBuffer, n: number): Promise<Float32Array> {
    return (await this.encodeReturning(pixels, n)).embeddings;
  }

  /**
   * encode(), and `pixels`' buffer handed back once the graph has run, for the next batch (so a
   * batch loop does not allocate an input buffer per batch).
   */
  encodeReturning(
    pixels: PixelBuffer,
    n: number,
  ): Promise<{ embeddings: Float32Array; pixels: PixelBuffer }> {
    const s = this.bundle.manifest.preprocessing.imageSize;
    const u8 = this.inputFormat === 'uint8-nhwc';
    if (u8 !== pixels instanceof Uint8Array || (!u8 && !(pixels instanceof Float32Array)))
      return Promise.reject(
        new TypeError(
          `this image graph takes ${this.inputFormat} pixels (${u8 ? 'Uint8Array' : 'Float32Array'}), got a ${pixels.constructor.name}`,
        ),
      );
    if (pixels.length !== n * 3 * s * s) {
      const shape = u8 ? `${n}x${s}x${s}x3` : `${n}x3x${s}x${s}`;
      return Promise.reject(new Error(`expected ${shape} pixels, got ${pixels.length} values`));
    }
    const input: TensorMessage =
      pixels instanceof Uint8Array
        ? { type: 'uint8', data: pixels, dims: [n, s, s, 3] }
        : { type: 'float32', data: pixels, dims: [n, 3, s, s] };
    return this.embed<PixelBuffer>(input).then((r) => ({
      embeddings: r.embeddings,
      pixels: r.input,
    }));
  }
}

/**
 * Token ids ([n, length] int64, padded) to L2-normalised text embeddings [n, embedDim]. Named
 * ClipTextEncoder so that it never shadows the global TextEncoder (UTF-8) in a file using both.
 */
export class ClipTextEncoder extends GraphEncoder {
  static async create(bundle: ModelBundle, opts: EncoderOptions = {}): Promise<ClipTextEncoder> {
    const graph = selectGraph(bundle, 'text', opts);
    return new ClipTextEncoder(await openGraph(bundle, graph, opts), bundle, graph);
  }

  async encode(ids: BigInt64Array, shape: [number, number]): Promise<Float32Array> {
    return (await this.embed({ type: 'int64', data: ids, dims: shape })).embeddings;
  }
}
