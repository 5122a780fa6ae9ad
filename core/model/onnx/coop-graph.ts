/**
 * @file CoOp's graph (exporter: coop_graph.py), standard ONNX ops only, so it runs on the same
 * execution providers as the encoders. onnxruntime-node has no training API: the graph itself holds
 * the backward pass of the frozen text encoder.
 *   inputs   input_ids [C, L] int64, ctx [C, L, W], ctx_mask [C, L], eot_index [C] int64,
 *            image_features [B, P] (normalised), targets [B, C]
 *   outputs  prompt_embeds [C, L, W], text_features [C, P] (normalised), logits [B, C],
 *            loss (mean cross-entropy), grad_ctx [C, L, W] = d loss / d ctx
 * L is any length up to the model's 77: under the causal mask nothing after a prompt's end token
 * changes its features, so callers cut prompts at the longest end token + 1.
 */
import { BundleError, bundleFile, type ModelBundle } from '../bundle';
import type { EncoderOptions } from './encoders';
import { SessionThread } from './session-thread';

export interface PromptBatch {
  /** Token ids [classes, length]; context positions hold placeholders. */
  ids: BigInt64Array;
  /** 1 at context positions, else 0 [classes, length]. */
  mask: Float32Array;
  eotIndex: BigInt64Array;
  classes: number;
  length: number;
}

export interface StepResult {
  loss: number;
  /** [classes, length, width]: zero outside the context positions. */
  gradCtx: Float32Array;
  logits: Float32Array;
}

const INPUTS = ['input_ids', 'ctx', 'ctx_mask', 'eot_index', 'image_features', 'targets'];
const OUTPUTS = ['prompt_embeds', 'text_features', 'logits', 'loss', 'grad_ctx'];

export class CoopGraph {
  private constructor(
    private readonly thread: SessionThread,
    /** Text width W (token embedding size). */
    readonly width: number,
    /** Projection size P (image embedding size). */
    readonly embedDim: number,
    readonly maxLength: number,
  ) {}

  static async create(bundle: ModelBundle, opts: EncoderOptions = {}): Promise<CoopGraph> {
    const coop = bundle.manifest.coop;
    if (!coop) {
      throw new BundleError(
        `Bundle ${bundle.dir} has no CoOp graph (coop.onnx): re-export it with infra/exporter/export.py, which writes it for every bundle.`,
      );
    }
    const thread = await SessionThread.start(bundleFile(bundle, coop.file), {
      providers: opts.providers ?? ['cpu'],
      threads: opts.threads ?? 0,
    });
    const missing = [
      ...INPUTS.filter((n) => !thread.inputNames.includes(n)),
      ...OUTPUTS.filter((n) => !thread.outputNames.includes(n)),
    ];
    if (missing.length > 0) {
      await thread.close();
      throw new BundleError(
        `Bundle ${bundle.dir}: ${coop.file} lacks ${missing.join(', ')}; re-export the bundle.`,
      );
    }
    const a = bundle.manifest.architecture;
    return new CoopGraph(thread, a.text.width, a.embedDim, coop.maxLength);
  }

  get provider() {
    return this.thread.provider;
  }

  /** One training step: loss and its gradient with respect to the context vectors. */
  async step(
    prompts: PromptBatch,
    ctx: Float32Array,
    images: Float32Array,
    targets: Float32Array,
  ): Promise<StepResult> {
    const out = await this.thread.run(this.feeds(prompts, ctx, images, targets), [
      'loss',
      'grad_ctx',
      'logits',
    ]);
    return { loss: out.loss!.data[0]!, gradCtx: out.grad_ctx!.data, logits: out.logits!.data };
  }

  /** Normalised text features [classes, P] of the prompts with this context. */
  async textFeatures(prompts: PromptBatch, ctx: Float32Array): Promise<Float32Array> {
    const out = await this.thread.run(this.dummyImageFeeds(prompts, ctx), ['text_features']);
    return out.text_features!.data;
  }

  /** Token embeddings [classes, length, W] of the ids (context mask zero): word initialisation. */
  async tokenEmbeddings(prompts: PromptBatch): Promise<Float32Array> {
    const zeroMask = { ...prompts, mask: new Float32Array(prompts.mask.length) };
    const ctx = new Float32Array(prompts.classes * prompts.length * this.width);
    const out = await this.thread.run(this.dummyImageFeeds(zeroMask, ctx), ['prompt_embeds']);
    return out.prompt_embeds!.data;
  }

  close(): Promise<void> {
    return this.thread.close();
  }

  private dummyImageFeeds(prompts: PromptBatch, ctx: Float32Array) {
    // One all-zero image: the outputs asked for do not depend on it.
    const targets = new Float32Array(prompts.classes);
    targets[0] = 1;
    return this.feeds(prompts, ctx, new Float32Array(this.embedDim), targets);
  }

  private feeds(
    prompts: PromptBatch,
    ctx: Float32Array,
    images: Float32Array,
    targets: Float32Array,
  ) {
    const { classes: c, length: l } = prompts;
    const b = images.length / this.embedDim;
    // Inputs are transferred to the session thread: constant tensors are sent as copies.
    return {
      input_ids: { type: 'int64' as const, data: prompts.ids.slice(), dims: [c, l] },
      ctx: { type: 'float32' as const, data: ctx, dims: [c, l, this.width] },
      ctx_mask: { type: 'float32' as const, data: prompts.mask.slice(), dims: [c, l] },
      eot_index: { type: 'int64' as const, data: prompts.eotIndex.slice(), dims: [c] },
      image_features: { type: 'float32' as const, data: images, dims: [b, this.embedDim] },
      targets: { type: 'float32' as const, data: targets, dims: [b, c] },
    };
  }
}
