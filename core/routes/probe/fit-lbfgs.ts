import { ClassColumns, type Features } from './features';
import { type LbfgsResult, minimizeLbfgs } from './lbfgs';
import type { Objective } from './line-search';
import {
  type FitContext,
  type FittedProbe,
  type RecipeOutcome,
  fmt,
  remapTheta,
  splitTheta,
  valAccuracy,
} from './recipe';
import { COOP_BINARY_SEARCH_STEPS, COOP_C_GRID, coopSearchC } from './selection';
import type { ValidationPlan } from './validation';

export interface LbfgsRecipe {
  kind: 'lbfgs';
  /** A fixed C: no selection. */
  C?: number;
  maxIterations?: number;
  cGrid?: number[];
  binarySearchSteps?: number;
}

/** OpenAI's published linear-probe example uses C = 0.316. */
export const DEFAULT_C = 0.316;

/**
 * scikit-learn's LogisticRegression(lbfgs) objective scaled by 1/N (its own scaling; same
 * minimiser): mean cross-entropy + ||W||^2 / (2 C N), intercept not penalised, over the rows
 * cached in the graph. The sums over rows run in ONNX Runtime; this adds the regulariser.
 */
function objective(ctx: FitContext, n: number, dim: number, k: number, c: number): Objective {
  return async (theta) => {
    ctx.signal?.throwIfAborted();
    const { w, b } = splitTheta(theta, dim, k);
    const r = await ctx.graph.lossGrad(w, b);
    const reg = 1 / (c * n);
    const g = new Float64Array(theta.length);
    let norm2 = 0;
    for (let i = 0; i < dim * k; i++) {
      norm2 += theta[i]! * theta[i]!;
      g[i] = r.gradW[i]! / n + reg * theta[i]!;
    }
    for (let j = 0; j < k; j++) g[dim * k + j] = r.gradB[j]! / n;
    return { f: r.loss / n + 0.5 * reg * norm2, g };
  };
}

async function fit(
  ctx: FitContext,
  data: Features,
  columns: ClassColumns,
  c: number,
  init: Float64Array,
  maxIterations: number,
  phase: string,
): Promise<LbfgsResult> {
  const k = columns.size;
  return minimizeLbfgs(objective(ctx, data.n, data.dim, k, c), init, {
    maxIterations,
    gtol: 1e-4,
    signal: ctx.signal,
    onIteration: (i) => ctx.progress(phase, i, maxIterations),
  });
}

/**
 * The CLIP paper / CoOp-baseline probe: multinomial logistic regression by L-BFGS, C selected
 * on the validation set by CoOp's search, then refit on the final rows at that C, warm-started
 * from the selection fit at that C (same C, more rows: most of the work is already done).
 * Selection fits start from zero, as scikit-learn's do. Warm-starting them from a neighbouring C
 * was tried and defeats the search: scikit-learn's tolerance (max |gradient| <= 1e-4 on the
 * mean loss) is loose next to what a 2-10x change of C does to the gradient once N is large
 * (40,000 rows: most warm fits stopped after 0 iterations), so neighbours returned the same
 * model, their val accuracies tied, and ties decide CoOp's search (largest C on the grid, the
 * left end in a bisection round).
 */
export async function lbfgsRecipe(
  ctx: FitContext,
  recipe: LbfgsRecipe,
  plan: ValidationPlan,
): Promise<RecipeOutcome> {
  const maxIterations = recipe.maxIterations ?? 1000;
  const notes: string[] = [];
  const unconverged: number[] = [];
  const stopNote = (r: LbfgsResult, c: number) => {
    if (r.reason === 'max-iterations') unconverged.push(c);
  };
  let c = DEFAULT_C;
  let selectedAccuracy: number | undefined;
  let warm: FittedProbe | undefined;

  if (plan.source === 'fixed') {
    c = recipe.C ?? DEFAULT_C;
    notes.push(`C = ${fmt(c)} fixed by the recipe: no selection`);
  } else if (plan.source === 'defaults') {
    notes.push(`C = ${DEFAULT_C} (OpenAI's published example) was used without selection`);
  } else {
    const { fitOn, val } = plan;
    const columns = new ClassColumns(fitOn.labels, ctx.numClasses);
    await ctx.graph.setTrainingData(fitOn.x, columns.oneHot(fitOn.labels), fitOn.n, fitOn.dim);
    await ctx.graph.setScoringData(val.x, val.n, val.dim);
    const fitted = new Map<number, Float64Array>();
    let fits = 0;
    const score = async (cTry: number) => {
      const phase = `lbfgs select C=${fmt(cTry)} (fit ${++fits})`;
      const init = zeros(fitOn.dim, columns.size);
      const r = await fit(ctx, fitOn, columns, cTry, init, maxIterations, phase);
      stopNote(r, cTry);
      fitted.set(cTry, r.x);
      return valAccuracy(ctx, { theta: r.x, columns, dim: fitOn.dim, iterations: 0 }, val);
    };
    const selection = await coopSearchC(
      score,
      recipe.cGrid ?? COOP_C_GRID,
      recipe.binarySearchSteps ?? COOP_BINARY_SEARCH_STEPS,
    );
    c = selection.value;
    selectedAccuracy = selection.valAccuracy;
    warm = { theta: fitted.get(c)!, columns, dim: fitOn.dim, iterations: 0 };
    notes.push(
      `C = ${fmt(c)} selected on ${val.n} validation images (val accuracy ${(100 * selection.valAccuracy).toFixed(2)}%) over ${selection.scored.length} fits`,
    );
  }

  const data = plan.finalRows;
  const columns = new ClassColumns(data.labels, ctx.numClasses);
  await ctx.graph.setTrainingData(data.x, columns.oneHot(data.labels), data.n, data.dim);
  const init = warm
    ? remapTheta(warm.theta, warm.columns, columns, data.dim)
    : zeros(data.dim, columns.size);
  const r = await fit(ctx, data, columns, c, init, maxIterations, `lbfgs final C=${fmt(c)}`);
  stopNote(r, c);
  if (unconverged.length > 0)
    notes.push(
      `L-BFGS stopped at ${maxIterations} iterations before converging for C = ${unconverged.map(fmt).join(', ')}`,
    );
  return {
    probe: { theta: r.x, columns, dim: data.dim, iterations: r.iterations },
    hyperparameter: c,
    ...(selectedAccuracy !== undefined ? { valAccuracy: selectedAccuracy } : {}),
    notes,
  };
}

const zeros = (dim: number, k: number) => new Float64Array(dim * k + k);
