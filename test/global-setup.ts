import { resolve } from 'node:path';
import { stackDown, stackUp } from '../infra/local-stack/stack';
import { installTools } from '../infra/local-stack/tools';

/**
 * Starts the test stack with the same code as `npm run stack:up`, in its own state folder so
 * tests never touch a developer's stack. If either server cannot start, this throws and the
 * whole test run fails: integration tests are never skipped. The error says which server failed,
 * its log file and the log's last lines (infra/local-stack/processes.ts ServerStartError), and is
 * printed before vitest's own summary (which would otherwise only say "No test files found").
 */
export default async function setup(): Promise<() => Promise<void>> {
  const home = resolve(process.env.CLIPEVAL_TEST_HOME ?? '.clipeval/test');
  let stack;
  try {
    // What `npm run stack:install` builds (cached after the first time): the servers, and the
    // kustomize and keda-check the autoscaling test runs, so `npm test` needs no step before it.
    await installTools();
    stack = await stackUp(home);
  } catch (err) {
    const message =
      `The test stack (Temporal dev server + versitygw, state in ${home}) did not start, so no test ran:\n` +
      (err instanceof Error ? err.message : String(err));
    console.error(`\n${message}\n`);
    throw new Error(message, { cause: err });
  }
  Object.assign(process.env, stack.env, { CLIPEVAL_HOME: home });
  return async () => {
    if (stack.started) await stackDown(home);
  };
}
