// Preloaded into the gpu worker process by bench/extract.ts (node --import): watches the
// worker's event loop (where Temporal heartbeats and cancellation run). Asked over the IPC
// channel the bench opens ('stall'), it answers the longest stall since the previous question
// and starts over, so the bench reads one figure per timed run without touching the worker's
// code. (Not a signal: Temporal's Runtime shuts the worker down on SIGUSR2, and SIGUSR1 is
// Node's inspector.) The channel is unref'd: it never holds the worker open.
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (process.send && process.channel) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  process.on('message', (m) => {
    if (m !== 'stall') return;
    process.send?.({ stallMs: loop.max / 1e6 });
    loop.reset();
  });
  process.channel.unref();
}
