/**
 * @file The Tip-Adapter route (Zhang et al., ECCV 2022): for one (shots, seed), a training-free
 * cache of the k-shot train features on top of the zero-shot prototypes (prototype-store.ts, the
 * zero-shot route's own), alpha and beta searched on the few-shot val split, then the test split
 * scored; with `finetune`, Tip-Adapter-F too (the cache keys trained, finetune.ts), a second
 * result. Each result is content-addressed by its inputsHash: a resumed run reuses it.
 *
 * Under base-to-new the cache holds base-class images only, the search and training classify
 * base-class val and train images among the base classes, and the test split is scored over every
 * class (new classes get no cache term: zero-shot), which writeRouteResult masks to each half.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { TipAdapterSpec } from '../../config/run-spec';
import type { EmbeddingMatrix } from '../../embeddings/reader';
import { planSpaceChoice } from '../../embeddings/shard-key';
import { contentHash } from '../../storage/content-hash';
import { type Route, variantName } from '../../storage/keys';
import type { RunHooks } from '../route-hooks';
import {
  type RouteDeps,
  type RouteInput,
  type RouteInputs,
  loadRouteInputs,
} from '../route-inputs';
import {
  type RouteContext,
  type RouteSummary,
  findRouteResult,
  writeRouteResult,
} from '../route-result';
import {
  prototypeClasses,
  prototypesKey,
  loadOrBuildPrototypes,
} from '../zero-shot/prototype-store';
import { finetuneTipAdapter } from './finetune';
import { type SearchResult, hpGrid, searchHp } from './search';
import { type TipData, tipData } from './tip-data';
import { type TipCache, clipLogits, matmulTransposed, tipScores } from './tip-logits';

export interface TipAdapterInput extends RouteInput {
  shots: number;
  seed: number;
}

/** Heartbeat details: the phase (prototypes, search, finetune) and where it stands. */
export interface TipAdapterProgress {
  variant: string;
  route: Route;
  phase: 'prototypes' | 'search' | 'finetune' | 'scoring';
  done: number;
  total: number;
}

/** What both results are scored with. */
interface Scoring {
  inputs: RouteInputs;
  spec: TipAdapterSpec;
  prototypes: Float32Array;
  prototypesUri: string;
  data: TipData;
  /** The classes the search and training classify among: all, or the base ones. */
  fitClasses: number;
}

export async function runTipAdapter(
  deps: RouteDeps,
  input: TipAdapterInput,
  hooks: RunHooks<TipAdapterProgress>,
): Promise<RouteSummary[]> {
  const inputs = await loadRouteInputs(deps, input);
  const { plan, bundle, read } = inputs;
  const spec = plan.spec.tipAdapter;
  const variant = variantName(input.shots, input.seed);
  const classes = prototypeClasses(plan);
  const routes: Route[] = spec.finetune ? ['tip-adapter', 'tip-adapter-f'] : ['tip-adapter'];
  const contexts = routes.map((route) =>
    tipContext(input, inputs, route, prototypesKey(bundle, classes)),
  );
  const earlier = await Promise.all(contexts.map((ctx) => findRouteResult(deps, ctx)));
  if (earlier.every((r) => r !== undefined)) return earlier;

  const beat: Beat = (route, phase, done, total) => {
    hooks.signal?.throwIfAborted(); // the search loop stops here too when the run is cancelled
    hooks.heartbeat({ variant, route, phase, done, total });
  };
  beat(routes[0]!, 'prototypes', 0, classes.names.length);
  const loaded = await loadOrBuildPrototypes(deps, bundle, classes, (n) =>
    beat('tip-adapter', 'prototypes', n, classes.names.length),
  );
  const k = plan.classes.length;
  const protocol = spec.protocol;
  const [train, val] = await Promise.all([read('train'), read('val', 0)]);
  const data = tipData({ train, val }, plan.classes, { ...input, protocol });
  const scoring: Scoring = {
    inputs,
    spec,
    prototypes: loaded.prototypes,
    prototypesUri: deps.store.uri(loaded.key),
    data,
    fitClasses: protocol === 'base-to-new' ? Math.ceil(k / 2) : k,
  };
  const test = await read('test', 0);
  const out: RouteSummary[] = [];
  for (const [i, ctx] of contexts.entries())
    out.push(earlier[i] ?? (await fitAndWrite(deps, ctx, scoring, test, hooks, beat)));
  return out;
}

type Beat = (route: Route, phase: TipAdapterProgress['phase'], done: number, total: number) => void;

/** Fits one of the two routes, scores the test split over every class and writes the result. */
async function fitAndWrite(
  deps: RouteDeps,
  ctx: RouteContext,
  s: Scoring,
  test: EmbeddingMatrix,
  hooks: RunHooks<TipAdapterProgress>,
  beat: Beat,
): Promise<RouteSummary> {
  const { route } = ctx;
  const result =
    route === 'tip-adapter'
      ? await tipAdapterResult(s, (d, t) => beat(route, 'search', d, t))
      : await tipAdapterFResult(s, ctx.seed ?? 0, hooks, (p, d, t) => beat(route, p, d, t));
  beat(route, 'scoring', 0, 1);
  const { plan } = s.inputs;
  const scores = await tipScores(test.embeddings, s.prototypes, result.cache, {
    numClasses: plan.classes.length,
    logitScale: logitScale(s),
    ...result.searched,
  });
  return writeRouteResult(deps, ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes: [...s.data.notes, ...result.notes],
    details: { ...commonDetails(s, route), ...result.details },
    protocol: s.spec.protocol,
  });
}

interface Fitted {
  cache: TipCache;
  searched: Pick<SearchResult, 'alpha' | 'beta'>;
  notes: string[];
  details: Record<string, unknown>;
}

/** Tip-Adapter: the cache as built, alpha and beta searched on val. */
async function tipAdapterResult(
  s: Scoring,
  onBeta: (done: number, total: number) => void,
): Promise<Fitted> {
  const cache: TipCache = { keys: s.data.keys, labels: s.data.keyLabels, dim: dimOf(s) };
  return { cache, ...(await search(s, cache, onBeta)) };
}

/** Tip-Adapter-F: the cache keys trained, then alpha and beta searched with them. */
async function tipAdapterFResult(
  s: Scoring,
  seed: number,
  hooks: RunHooks<TipAdapterProgress>,
  beat: (phase: 'finetune' | 'search', done: number, total: number) => void,
): Promise<Fitted> {
  const { spec, data } = s;
  const dim = dimOf(s);
  const trained = await finetuneTipAdapter(
    {
      cacheKeys: data.keys,
      cacheLabels: data.keyLabels,
      prototypes: fitPrototypes(s),
      numClasses: s.fitClasses,
      dim,
      logitScale: s.inputs.bundle.manifest.logitScale,
      train: data.train,
      val: data.val,
      alpha: spec.initAlpha,
      beta: spec.initBeta,
      epochs: spec.epochs,
      lr: spec.lr,
      batchSize: spec.batchSize,
      seed,
    },
    {
      onStep: ({ epoch, step, steps }) =>
        beat('finetune', epoch * steps + step + 1, spec.epochs * steps),
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    },
  );
  const cache: TipCache = { keys: trained.weights, labels: data.keyLabels, dim };
  const searched = await search(s, cache, (d, t) => beat('search', d, t));
  const kept = data.val.labels.length > 0 ? [] : ['no val images: the last epoch was kept'];
  return {
    cache,
    ...searched,
    notes: [...searched.notes, ...kept],
    details: {
      ...searched.details,
      bestEpoch: trained.bestEpoch,
      losses: trained.losses,
      valAccByEpoch: trained.valAcc,
    },
  };
}

/** search_hp on the val features, or the initial alpha and beta when val has no image. */
async function search(
  s: Scoring,
  cache: TipCache,
  onBeta: (done: number, total: number) => void,
): Promise<Omit<Fitted, 'cache'>> {
  const { spec, data } = s;
  const init = { alpha: spec.initAlpha, beta: spec.initBeta };
  if (data.val.labels.length === 0) {
    return {
      searched: init,
      notes: ['no val images: alpha and beta are the spec’s initAlpha and initBeta, unsearched'],
      details: { alpha: init.alpha, beta: init.beta, searched: false },
    };
  }
  const dim = dimOf(s);
  const x = data.val.x;
  const best = await searchHp(
    {
      clip: clipLogits(x, fitPrototypes(s), dim, logitScale(s)),
      affinity: matmulTransposed(x, cache.keys, dim),
      cacheLabels: cache.labels,
      numClasses: s.fitClasses,
      labels: data.val.labels,
      searchScale: spec.searchScale,
      searchStep: spec.searchStep,
    },
    async (done, total) => {
      onBeta(done, total);
      await yieldToEventLoop();
    },
  );
  return {
    searched: { alpha: best.alpha, beta: best.beta },
    notes: [],
    details: { alpha: best.alpha, beta: best.beta, valAcc: best.acc, searched: true },
  };
}

function commonDetails(s: Scoring, route: Route): Record<string, unknown> {
  const { spec, data } = s;
  const grid = (scale: number, step: number) => {
    const g = hpGrid(scale, step);
    return { from: g[0], to: g.at(-1), steps: step };
  };
  return {
    config: configOf(spec, route),
    grid: {
      beta: grid(spec.searchScale[0], spec.searchStep[0]),
      alpha: grid(spec.searchScale[1], spec.searchStep[1]),
    },
    cacheSize: data.keyLabels.length,
    viewsPerKey: data.viewsPerKey,
    trainImages: data.keyLabels.length,
    valImages: data.val.labels.length,
    prototypes: s.prototypesUri,
    logitScale: logitScale(s),
  };
}

const dimOf = (s: Scoring) => s.inputs.bundle.manifest.architecture.embedDim;
/** The prototypes of the classes the search and training classify among (the first rows). */
const fitPrototypes = (s: Scoring) => s.prototypes.subarray(0, s.fitClasses * dimOf(s));
const logitScale = (s: Scoring) => s.inputs.bundle.manifest.logitScale;

/** The hyper-parameters a route's result depends on (Tip-Adapter's, or those plus training's). */
function configOf(spec: TipAdapterSpec, route: Route) {
  const { searchScale, searchStep, initAlpha, initBeta } = spec;
  const search = { searchScale, searchStep, initAlpha, initBeta };
  if (route === 'tip-adapter') return search;
  return { ...search, epochs: spec.epochs, lr: spec.lr, batchSize: spec.batchSize };
}

/**
 * The result's identity: the embedding space (bundle, preprocessing, image graph, augmented
 * views), the data, the prototypes (their content key: bundle, class names, templates), the
 * (shots, seed), the route's hyper-parameters, and the protocol only when base-to-new (as the
 * other routes), so all-classes results keep the hash they would have without the field.
 */
function tipContext(
  input: TipAdapterInput,
  { plan, bundle, provenance }: RouteInputs,
  route: Route,
  prototypes: string,
): RouteContext {
  const { runId, shots, seed } = input;
  const protocol = plan.spec.tipAdapter.protocol;
  const inputsHash = contentHash({
    bundle: bundle.hash,
    space: planSpaceChoice(plan),
    dataset: plan.dataset.fingerprint,
    augment: input.augment,
    names: plan.classNames,
    prototypes,
    shots,
    seed,
    config: configOf(plan.spec.tipAdapter, route),
    ...(protocol === 'base-to-new' ? { protocol } : {}),
  });
  const variant = variantName(shots, seed);
  return { runId, route, variant, shots, seed, inputsHash, provenance };
}
