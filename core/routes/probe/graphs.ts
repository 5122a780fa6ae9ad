/**
 * @file The probe's two ONNX graphs, built at run time with symbolic sizes (any N, D, K) and
 * standard opset-17 ops only, so they run on the cpu, cuda and webgpu execution providers alike.
 *
 * Softmax regression loss and gradient (the heavy part of every probe iteration):
 *   inputs   X [N, D], targets [N, K] (one-hot, or any rows summing to 1), W [D, K], b [K]
 *   outputs  loss [] = sum_i CE_i, row_loss [N] = CE_i, grad_W [D, K] = X^T (P - T),
 *            grad_b [K] = sum_i (P - T)_i,   with P = softmax(X W + b)
 * The regulariser and any 1/N scaling are added by the caller (a few D*K flops). row_loss lets
 * the caller sum in float64: a float32 sum over 50,000 rows is too noisy for a line search.
 *
 * Scores: X [N, D], W [D, K], b [K] -> logits [N, K].
 */
import { ElemType, encodeModel, type ValueInfo } from './onnx-writer';

const f32 = (name: string, shape: (number | string)[]): ValueInfo => ({
  name,
  elemType: ElemType.FLOAT,
  shape,
});

export const LOSS_GRAD_OUTPUTS = ['loss', 'row_loss', 'grad_W', 'grad_b'] as const;

export function lossGradGraph(): Uint8Array {
  return encodeModel({
    name: 'clipeval_probe_loss_grad',
    inputs: [
      f32('X', ['N', 'D']),
      f32('targets', ['N', 'K']),
      f32('W', ['D', 'K']),
      f32('b', ['K']),
    ],
    outputs: [
      f32('loss', []),
      f32('row_loss', ['N']),
      f32('grad_W', ['D', 'K']),
      f32('grad_b', ['K']),
    ],
    initializers: [
      { name: 'axis_0', dims: [1], values: [0] },
      { name: 'axis_1', dims: [1], values: [1] },
    ],
    nodes: [
      { op: 'Gemm', inputs: ['X', 'W', 'b'], outputs: ['logits'] },
      { op: 'LogSoftmax', inputs: ['logits'], outputs: ['log_p'], attrs: { axis: 1 } },
      { op: 'Mul', inputs: ['targets', 'log_p'], outputs: ['t_log_p'] },
      {
        op: 'ReduceSum',
        inputs: ['t_log_p', 'axis_1'],
        outputs: ['neg_row_loss'],
        attrs: { keepdims: 0 },
      },
      { op: 'Neg', inputs: ['neg_row_loss'], outputs: ['row_loss'] },
      { op: 'ReduceSum', inputs: ['row_loss'], outputs: ['loss'], attrs: { keepdims: 0 } },
      // d CE / d logits = softmax - targets (rows of targets sum to 1).
      { op: 'Exp', inputs: ['log_p'], outputs: ['p'] },
      { op: 'Sub', inputs: ['p', 'targets'], outputs: ['d_logits'] },
      // transA reads X as X^T without materialising a transposed copy of it.
      { op: 'Gemm', inputs: ['X', 'd_logits'], outputs: ['grad_W'], attrs: { transA: 1 } },
      {
        op: 'ReduceSum',
        inputs: ['d_logits', 'axis_0'],
        outputs: ['grad_b'],
        attrs: { keepdims: 0 },
      },
    ],
  });
}

export function scoresGraph(): Uint8Array {
  return encodeModel({
    name: 'clipeval_probe_scores',
    inputs: [f32('X', ['N', 'D']), f32('W', ['D', 'K']), f32('b', ['K'])],
    outputs: [f32('logits', ['N', 'K'])],
    nodes: [{ op: 'Gemm', inputs: ['X', 'W', 'b'], outputs: ['logits'] }],
  });
}
