import type { SourcePolicy } from './config/allowed-sources';
import type { ImageGraph } from './config/run-spec';
import { DEFAULT_RESOURCE_LIMITS, type ResourceLimits } from './config/env';
import type { Plan } from './dataset/plan';
import { type ModelBundle, resolveBundle } from './model/bundle';
import { CoopGraph } from './model/onnx/coop-graph';
import { type EncoderOptions, ImageEncoder, ClipTextEncoder } from './model/onnx/encoders';
import { type ClipTokenizer, tokenizerForBundle } from './model/text/tokenizer';
import { DecodePool } from './model/image/decode-pool';
import type { ImageLimits } from './model/image/embed-images';
import type { ObjectStore } from './storage/object-store';
import { ByteBudget } from './util/byte-budget';
import { Claims } from './util/claims';

/**
 * What a worker keeps between activities: bundles (fetched once), one encoder per bundle and
 * tower (its ONNX Runtime session is created once per worker and reused), tokenizers, and the
 * last plans read (every shard of a run reads the same plan.json).
 */
export class WorkerResources {
  private readonly bundles = new Map<string, Promise<ModelBundle>>();
  private readonly encoders = new Map<string, Promise<ImageEncoder>>();
  private readonly textEncoders = new Map<string, Promise<ClipTextEncoder>>();
  private readonly tokenizers = new Map<string, Promise<ClipTokenizer>>();
  private readonly coopGraphs = new Map<string, Promise<CoopGraph>>();
  private readonly plans = new Map<string, Promise<Plan>>();

  constructor(
    /** The output bucket; plans and bundles may live in other buckets (`store.at(uri)`). */
    readonly store: ObjectStore,
    private readonly bundleCache: string,
    private readonly encoderOptions: EncoderOptions,
    /** Where bundles may come from (CLIPEVAL_ALLOWED_*): checked before any bundle is read. */
    private readonly sources?: SourcePolicy,
    /** What one image or bundle file may cost this worker (env.limits); default: the defaults. */
    private readonly limits: ResourceLimits = DEFAULT_RESOURCE_LIMITS,
    /** Threads of the worker's decode pool (env.decode.threads); 0: none, images preprocessed on the main thread. */
    private readonly decodeThreads = 0,
  ) {
    this.images = {
      maxBytes: limits.maxImageBytes,
      maxPixels: limits.maxImagePixels,
      budget: new ByteBudget(limits.imageMemoryBudget),
    };
  }

  /**
   * The image limits of this worker, with its one memory budget for images in flight: shared by
   * every shard the worker extracts at the same time.
   */
  readonly images: ImageLimits;

  private pool: DecodePool | undefined;

  /**
   * Pixel-cache blocks being decoded by this worker's extractions: another extraction needing the
   * same block waits for it to be written and reads it (core/embeddings/shard-pixels.ts).
   */
  readonly pixelClaims = new Claims();

  /**
   * The worker's decode pool (resize, crops, normalisation in worker threads), shared by every
   * shard it extracts; undefined when it has none (0 threads). Its threads start on first use.
   */
  decodePool(): DecodePool | undefined {
    if (this.decodeThreads > 0) this.pool ??= new DecodePool(this.decodeThreads);
    return this.pool;
  }

  bundle(ref: string): Promise<ModelBundle> {
    return memo(this.bundles, ref, () =>
      resolveBundle(ref, {
        store: this.store,
        cacheDir: this.bundleCache,
        limits: { maxFileBytes: this.limits.maxBundleFileBytes },
        ...(this.sources ? { sources: this.sources } : {}),
      }),
    );
  }

  /**
   * The bundle's image encoder running `graph` (a run's plan says which): one session per bundle
   * and graph. A bundle without that graph fails with a BundleError (permanent) naming the fix.
   */
  imageEncoder(bundle: ModelBundle, graph: ImageGraph = 'fp32'): Promise<ImageEncoder> {
    return memo(this.encoders, `${bundle.hash}\n${graph}`, () =>
      ImageEncoder.create(bundle, { ...this.encoderOptions, precision: graph }),
    );
  }

  textEncoder(bundle: ModelBundle): Promise<ClipTextEncoder> {
    return memo(this.textEncoders, bundle.hash, () =>
      ClipTextEncoder.create(bundle, this.encoderOptions),
    );
  }

  coopGraph(bundle: ModelBundle): Promise<CoopGraph> {
    return memo(this.coopGraphs, bundle.hash, () => CoopGraph.create(bundle, this.encoderOptions));
  }

  tokenizer(bundle: ModelBundle): Promise<ClipTokenizer> {
    return memo(this.tokenizers, bundle.hash, () => tokenizerForBundle(bundle));
  }

  plan(uri: string): Promise<Plan> {
    if (this.plans.size >= 4) this.plans.delete(this.plans.keys().next().value!);
    const { store, key } = this.store.at(uri);
    return memo(this.plans, uri, () => store.requireJson<Plan>(key));
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
    const encoders = await Promise.allSettled([
      ...this.encoders.values(),
      ...this.textEncoders.values(),
      ...this.coopGraphs.values(),
    ]);
    await Promise.all(encoders.flatMap((e) => (e.status === 'fulfilled' ? [e.value.close()] : [])));
    this.encoders.clear();
    this.textEncoders.clear();
    this.coopGraphs.clear();
  }
}

/** Caches a promise by key; a rejected promise is dropped so the next call retries. */
function memo<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (!p) {
    p = make();
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}
