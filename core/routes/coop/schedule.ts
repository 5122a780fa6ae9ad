/**
 * @file CoOp's optimisation recipe (Dassl, as the official configs set it): SGD with momentum, a
 * constant warm-up learning rate for the first epochs, then cosine annealing over the total epoch
 * count, stepped once per epoch. Dassl's ConstantWarmupScheduler hands over to a
 * CosineAnnealingLR(T_max = epochs) that starts stepping after the warm-up, so epoch e >= warmup
 * runs at lr * (1 + cos(pi * (e - warmup) / epochs)) / 2.
 */

export interface CoopSchedule {
  epochs: number;
  lr: number;
  warmupEpochs: number;
  warmupLr: number;
}

export function learningRate(s: CoopSchedule, epoch: number): number {
  if (epoch < s.warmupEpochs) return s.warmupLr;
  return (s.lr * (1 + Math.cos((Math.PI * (epoch - s.warmupEpochs)) / s.epochs))) / 2;
}

/** The published epochs by shot count: 1 -> 50, 2 and 4 -> 100, 8, 16 and more -> 200. */
export function defaultEpochs(shots: number): number {
  if (shots <= 1) return 50;
  if (shots <= 4) return 100;
  return 200;
}

/**
 * torch.optim.SGD (no dampening, no Nesterov) in place: g = grad + wd * p; the momentum buffer
 * starts as g on the first step, then buf = momentum * buf + g; p -= lr * buf.
 */
export function sgdStep(
  params: Float32Array,
  grad: Float32Array,
  buffer: Float32Array,
  opts: { lr: number; momentum: number; weightDecay: number; firstStep: boolean },
): void {
  for (let i = 0; i < params.length; i++) {
    const g = grad[i]! + opts.weightDecay * params[i]!;
    const b = opts.firstStep ? g : opts.momentum * buffer[i]! + g;
    buffer[i] = b;
    params[i] = params[i]! - opts.lr * b;
  }
}
