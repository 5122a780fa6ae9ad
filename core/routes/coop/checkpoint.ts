/**
 * @file CoOp's epoch checkpoint: the context and the SGD momentum after `epoch` finished epochs,
 * with the loss curve so far. It is written after every epoch; a retried or resumed attempt
 * continues from it. Float arrays travel as base64 of their little-endian bytes (exact, compact).
 */
import { PermanentError } from '../../util/errors';

export interface CoopState {
  /** Finished epochs. */
  epoch: number;
  /** [contexts, nCtx, width]: one context, or one per class (CSC). */
  ctx: Float32Array;
  momentum: Float32Array;
  /** Steps taken so far (the momentum buffer starts at the first). */
  steps: number;
  /** Mean training loss of each finished epoch. */
  losses: number[];
}

export interface CoopCheckpointFile {
  version: 1;
  /** Hash of everything training depends on: a checkpoint of other inputs is never resumed. */
  inputsHash: string;
  epoch: number;
  steps: number;
  losses: number[];
  ctx: string;
  momentum: string;
  dims: number[];
}

export class CoopDivergedError extends PermanentError {
  override readonly name = 'CoopDivergedError';
}

export const floatsToBase64 = (a: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

export function floatsFromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.length / 4);
  Buffer.from(out.buffer).set(b);
  return out;
}

/** Refuses non-finite values: a diverged run must never overwrite the last good checkpoint. */
export function assertFiniteState(state: CoopState, where: string): void {
  const bad = (a: Float32Array) => a.findIndex((v) => !Number.isFinite(v));
  const loss = state.losses.findIndex((v) => !Number.isFinite(v));
  const i = bad(state.ctx);
  const j = bad(state.momentum);
  if (i >= 0 || j >= 0 || loss >= 0) {
    throw new CoopDivergedError(
      `CoOp diverged at ${where}: ${i >= 0 ? `context value ${i} is ${state.ctx[i]}` : j >= 0 ? `momentum value ${j} is ${state.momentum[j]}` : `epoch ${loss + 1} loss is ${state.losses[loss]}`}. ` +
        'The last good checkpoint is kept; lower coop.lr or check the embeddings.',
    );
  }
}

export function encodeCheckpoint(
  state: CoopState,
  inputsHash: string,
  dims: number[],
): CoopCheckpointFile {
  assertFiniteState(state, `epoch ${state.epoch}`);
  return {
    version: 1,
    inputsHash,
    epoch: state.epoch,
    steps: state.steps,
    losses: state.losses,
    ctx: floatsToBase64(state.ctx),
    momentum: floatsToBase64(state.momentum),
    dims,
  };
}

export function decodeCheckpoint(file: CoopCheckpointFile, where: string): CoopState {
  const state = {
    epoch: file.epoch,
    steps: file.steps,
    losses: file.losses,
    ctx: floatsFromBase64(file.ctx),
    momentum: floatsFromBase64(file.momentum),
  };
  assertFiniteState(state, where);
  return state;
}
