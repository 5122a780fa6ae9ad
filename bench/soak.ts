/**
 * @file `npm run soak [-- --size small|full --seed N]`: the chaos soak (bench/soak/run.ts) on the
 * local stack's S3 (started by stackUp if it is not running; Temporal is the soak's own). Prints
 * the table and exits 1 when any invariant failed. Also CLIPEVAL_SOAK_SIZE and CLIPEVAL_SOAK_SEED.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { loadEnv } from '../core/config/env';
import { stackUp } from '../infra/local-stack/stack';
import { runSoak, soakTable } from './soak/run';

const { values: arg } = parseArgs({
  options: {
    size: { type: 'string', default: process.env.CLIPEVAL_SOAK_SIZE ?? 'full' },
    seed: { type: 'string', default: process.env.CLIPEVAL_SOAK_SEED ?? '26' },
  },
});
if (arg.size !== 'small' && arg.size !== 'full') {
  console.error(`--size must be small or full, not "${arg.size}"`);
  process.exit(2);
}

async function main(size: 'small' | 'full'): Promise<number> {
  const stack = await stackUp();
  // Into process.env, as the test setup does: the SDK's credentials and the worker processes'.
  Object.assign(process.env, stack.env);
  const env = loadEnv();
  const result = await runSoak({ env, size, seed: Number(arg.seed), log: console.log });
  console.log(`\n${new Date().toISOString()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`);
  console.log(soakTable(result));
  for (const f of result.failures) console.error(`FAIL: ${f}`);
  return result.failures.length > 0 ? 1 : 0;
}

main(arg.size).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
