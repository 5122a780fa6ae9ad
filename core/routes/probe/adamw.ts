/**
 * @file AdamW as torch.optim.AdamW computes it (defaults betas (0.9, 0.999), eps 1e-8, decoupled
 * weight decay applied to every parameter, bias included, as CLIP_benchmark's optimizer over
 * model.parameters() does), on float64 state.
 */

export interface AdamWState {
  m: Float64Array;
  v: Float64Array;
  /** Steps taken. */
  t: number;
}

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export function adamwState(size: number): AdamWState {
  return { m: new Float64Array(size), v: new Float64Array(size), t: 0 };
}

/** One step on `params` in place. */
export function adamwStep(
  params: Float64Array,
  grad: ArrayLike<number>,
  state: AdamWState,
  opts: AdamWOptions,
): void {
  const { lr, weightDecay } = opts;
  const beta1 = opts.beta1 ?? 0.9;
  const beta2 = opts.beta2 ?? 0.999;
  const eps = opts.eps ?? 1e-8;
  state.t++;
  const stepSize = lr / (1 - beta1 ** state.t);
  const correction2 = Math.sqrt(1 - beta2 ** state.t);
  const decay = 1 - lr * weightDecay;
  const { m, v } = state;
  for (let i = 0; i < params.length; i++) {
    const g = grad[i]!;
    m[i] = beta1 * m[i]! + (1 - beta1) * g;
    v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
    params[i] = params[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / correction2 + eps);
  }
}

/** CLIP_benchmark's cosine schedule without warm-up, set before each step (0-based). */
export function cosineLr(baseLr: number, step: number, totalSteps: number): number {
  return 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps)) * baseLr;
}
