import type { Client } from '@temporalio/client';
import { type ClipevalEnv, loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { connectClient } from '../client/evaluations';

/** How a command gets its environment and a Temporal client (stack.env defaults applied first). */
export type Connect = () => Promise<{ env: ClipevalEnv; client: Client }>;

export const connect: Connect = async () => {
  loadStackEnvDefaults();
  const env = loadEnv();
  return { env, client: await connectClient(env) };
};
