import type { Plan } from './dataset/plan';
import { type ModelBundle, resolveBundle } from './model/bundle';
import { CoopGraph } from './model/onnx/coop-graph';
import { type EncoderOptions, ImageEncoder, TextEncoder } from './model/onnx/encoders';
import { type ClipTokenizer, tokenizerForBundle } from './model/text/tokenizer';
import type { ObjectStore } from './storage/object-store';

/**
 * What a worker keeps between activities: bundles (fetched once), one encoder per bundle and
 * tower (its ONNX Runtime session is created once per worker and reused), tokenizers, and the
 * last plans read (every shard of a run reads the same plan.json).
 */
export class WorkerResources {
  private readonly bundles = new Map<string, Promise<ModelBundle>>();
  private readonly encoders = new Map<string, Promise<ImageEncoder>>();
  private readonly textEncoders = new Map<string, Promise<TextEncoder>>();
  private readonly tokenizers = new Map<string, Promise<ClipTokenizer>>();
  private readonly coopGraphs = new Map<string, Promise<CoopGraph>>();
  private readonly plans = new Map<string, Promise<Plan>>();

  constructor(
    /** The output bucket; plans and bundles may live in other buckets (`store.at(uri)`). */
    readonly store: ObjectStore,
    private readonly bundleCache: string,
    private readonly encoderOptions: EncoderOptions,
  ) {}

  bundle(ref: string): Promise<ModelBundle> {
    return memo(this.bundles, ref, () =>
      resolveBundle(ref, { store: this.store, cacheDir: this.bundleCache }),
    );
  }

  imageEncoder(bundle: ModelBundle): Promise<ImageEncoder> {
    return memo(this.encoders, bundle.hash, () => ImageEncoder.create(bundle, this.encoderOptions));
  }

  textEncoder(bundle: ModelBundle): Promise<TextEncoder> {
    return memo(this.textEncoders, bundle.hash, () =>
      TextEncoder.create(bundle, this.encoderOptions),
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
