// Preloaded into the gpu worker process by bench/extract.ts (node --import): watches the
// worker's event loop (where Temporal heartbeats and cancellation run). On SIGUSR2 it writes the
// longest stall since the previous signal to BENCH_STALL_FILE ({ seq, maxMs }) and starts over,
// so the bench reads one figure per timed run without touching the worker's code.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.BENCH_STALL_FILE;
if (file) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let seq = 0;
  process.on('SIGUSR2', () => {
    writeFileSync(file, JSON.stringify({ seq: ++seq, maxMs: loop.max / 1e6 }));
    loop.reset();
  });
}
