import { resolve } from 'node:path';
import { stackDown, stackUp } from '../infra/local-stack/stack';

/**
 * Starts the test stack with the same code as `npm run stack:up`, in its own state folder so
 * tests never touch a developer's stack. If either server cannot start, this throws and the
 * whole test run fails: integration tests are never skipped.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const home = resolve(process.env.CLIPEVAL_TEST_HOME ?? '.clipeval/test');
  const stack = await stackUp(home);
  Object.assign(process.env, stack.env, { CLIPEVAL_HOME: home });
  return async () => {
    if (stack.started) await stackDown(home);
  };
}
