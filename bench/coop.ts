// `npm run bench:coop`: one CoOp training step (16 context vectors, batch 32, SGD with momentum)
// on the full-size random-init ViT-B/32 text tower, clipeval (coop.onnx in ONNX Runtime on a
// worker thread, loss gradient gathered and SGD in TypeScript) against PyTorch eager autograd on
// the same machine, in the same run, with the same weights, class names and thread count.
// PyTorch runs twice: with 77 positions (as the official CoOp code) and cut like clipeval.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildPrompts } from '../core/routes/coop/prompts';
import { sgdStep } from '../core/routes/coop/schedule';
import { gatherGradient, randomContext, scatterContext } from '../core/routes/coop/trainer';
import { loadBundle } from '../core/model/bundle';
import { CoopGraph } from '../core/model/onnx/coop-graph';
import { gaussian, seededRandom } from '../core/util/random';
import { tokenizerForBundle } from '../core/model/text/tokenizer';
import { l2NormalizeRows } from '../core/util/vectors';
import { BENCH_BUNDLE, ensureBundle, PYTHON, ROOT } from './fixtures';

const THREADS = Number(process.env.BENCH_THREADS ?? availableParallelism());
const CLASSES = (process.env.BENCH_CLASSES ?? '10,100').split(',').map(Number);
const N_CTX = 16;
const BATCH = 32;

interface TorchTimes {
  torch: string;
  names: string[];
  seq_full: number;
  seq_cut: number;
  ms_full: number;
  ms_cut: number;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function main(): Promise<void> {
  ensureBundle(BENCH_BUNDLE);
  const bundle = await loadBundle(BENCH_BUNDLE);
  const tokenizer = await tokenizerForBundle(bundle);
  const graph = await CoopGraph.create(bundle, { threads: THREADS });
  const rows: Record<string, unknown>[] = [];
  try {
    for (const classes of CLASSES) {
      const repeats = classes >= 100 ? 3 : 5;
      const py = spawnSync(
        PYTHON,
        [
          join(ROOT, 'bench', 'coop_torch.py'),
          '--classes',
          `${classes}`,
          '--threads',
          `${THREADS}`,
          '--repeats',
          `${repeats}`,
        ],
        { encoding: 'utf8', maxBuffer: 1 << 24 },
      );
      if (py.status !== 0) throw new Error(`coop_torch.py failed: ${py.stderr}`);
      const torch = JSON.parse(py.stdout) as TorchTimes;

      const layout = buildPrompts(tokenizer, torch.names, {
        nCtx: N_CTX,
        position: 'end',
        maxLength: graph.maxLength,
      });
      if (layout.batch.length !== torch.seq_cut)
        throw new Error(`sequence ${layout.batch.length} != PyTorch's cut ${torch.seq_cut}`);
      const g = gaussian(seededRandom('bench-coop'));
      const images = l2NormalizeRows(
        Float32Array.from({ length: BATCH * graph.embedDim }, g),
        graph.embedDim,
      );
      const targets = new Float32Array(BATCH * classes);
      for (let b = 0; b < BATCH; b++) targets[b * classes + (b % classes)] = 1;
      const ctx = randomContext(1, N_CTX, graph.width, 0);
      const momentum = new Float32Array(ctx.length);
      let first = true;
      // The whole step as the trainer runs it: scatter, graph (forward + backward), gather, SGD.
      const step = async () => {
        const r = await graph.step(
          layout.batch,
          scatterContext(ctx, layout, graph.width, false),
          images.slice(),
          targets.slice(),
        );
        sgdStep(ctx, gatherGradient(r.gradCtx, layout, graph.width, false), momentum, {
          lr: 0.002,
          momentum: 0.9,
          weightDecay: 5e-4,
          firstStep: first,
        });
        first = false;
      };
      await step(); // warm-up
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        await step();
        times.push(performance.now() - t0);
      }
      loop.disable();
      const ms = median(times);
      rows.push({
        classes,
        seq: `${torch.seq_cut} of ${torch.seq_full}`,
        clipeval_ms: Math.round(ms),
        torch_full_ms: Math.round(torch.ms_full),
        torch_cut_ms: Math.round(torch.ms_cut),
        vs_torch_full: +(ms / torch.ms_full).toFixed(2),
        vs_torch_cut: +(ms / torch.ms_cut).toFixed(2),
        event_loop_max_ms: Math.round(loop.max / 1e6),
      });
    }
  } finally {
    await graph.close();
  }
  console.log(
    `CoOp step, ViT-B/32 text tower (random init), n_ctx ${N_CTX}, batch ${BATCH}, ${THREADS} threads, provider ${graph.provider}`,
  );
  console.table(rows);
  console.log(JSON.stringify({ bench: 'coop', threads: THREADS, rows }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
