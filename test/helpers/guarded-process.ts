// A process with the worker's process guards installed (workers/process-guards.ts), for
// test/unit/process-guards.test.ts: it throws and rejects outside any awaited chain, as many
// times as argv[2] says, then reports whether it is still alive.
import { installProcessGuards } from '../../workers/process-guards';

const uncaught = Number(process.argv[2] ?? '1');
installProcessGuards({
  log: (level, message, meta) =>
    process.stderr.write(`${JSON.stringify({ level, message, ...meta })}\n`),
  onFatal: (reason) => {
    process.stdout.write(`fatal: ${reason}\n`);
    process.exit(1);
  },
  maxUncaught: 3,
});
void Promise.reject(new Error('rejected with nobody awaiting \u2028 it'));
for (let i = 0; i < uncaught; i++)
  setTimeout(() => {
    throw new TypeError(`thrown from a callback ${i}`);
  }, 10 * i);
setTimeout(() => process.stdout.write('still serving\n'), 300);
