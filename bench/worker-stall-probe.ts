// Preloaded into the gpu worker process by bench/extract.ts (node --import): watches the
// worker's event loop (where Temporal heartbeats and cancellation run), counts the S3 requests
// the worker sends and turns on the worker's phase profile (core/util/phase-profile.ts: S3
// reads, decode, resample, inference, writes). Asked over the IPC channel the bench opens
// ('stall'), it answers the longest stall, the requests by kind and the phase totals since the
// previous question and starts over, so the bench reads one figure per timed run without
// touching the worker's code. (Not a signal:
// Temporal's Runtime shuts the worker down on SIGUSR2, and SIGUSR1 is Node's inspector.) The
// channel is unref'd: it never holds the worker open.
import { S3Client } from '@aws-sdk/client-s3';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { enablePhaseProfile, phaseTotals } from '../core/util/phase-profile';

if (process.send && process.channel) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let requests: Record<string, number> = {};
  enablePhaseProfile();
  // Every S3 call of the worker goes through S3Client.send (core/storage/object-store.ts).
  // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound below with apply(this)
  const send = S3Client.prototype.send;
  S3Client.prototype.send = function (this: S3Client, ...args: Parameters<typeof send>) {
    const command = args[0] as { constructor: { name: string }; input: { Range?: string } };
    const kind =
      command.constructor.name.replace(/Command$/, '') + (command.input.Range ? ' (ranged)' : '');
    requests[kind] = (requests[kind] ?? 0) + 1;
    return send.apply(this, args);
  } as typeof send;
  process.on('message', (m) => {
    if (m !== 'stall') return;
    process.send?.({ stallMs: loop.max / 1e6, requests, phases: phaseTotals() });
    loop.reset();
    requests = {};
    enablePhaseProfile();
  });
  process.channel.unref();
}
