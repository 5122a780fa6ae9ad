import { type ClipevalEnv, envSource, temporalTls } from '../core/config/env';
import { UsageError } from './errors';

/** The options both connections take: the client's Connection and the workers' NativeConnection. */
export interface TemporalConnectOptions {
  address: string;
  tls: ReturnType<typeof temporalTls>;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/**
 * The one way clipeval connects to Temporal, for the client (`Connection.connect`) and the workers
 * (`NativeConnection.connect`) alike: the same address, TLS, API key and gRPC headers from the
 * environment or profile (core/config/temporal-env.ts), and the same error when the server is not
 * there, saying where the address came from.
 */
export async function connectTemporal<C>(
  env: ClipevalEnv,
  connect: (options: TemporalConnectOptions) => Promise<C>,
): Promise<C> {
  const t = env.temporal;
  const options: TemporalConnectOptions = {
    address: t.address,
    tls: temporalTls(t),
    ...(t.apiKey ? { apiKey: t.apiKey } : {}),
    ...(t.metadata ? { metadata: t.metadata } : {}),
  };
  try {
    return await connect(options);
  } catch (err) {
    const source = t.profile ? `profile ${t.profile}` : envSource('TEMPORAL_ADDRESS');
    throw new UsageError(
      `Cannot reach Temporal at ${t.address} (${source}): ${(err as Error).message}\n` +
        'Start the local stack with `npm run stack:up`, or set TEMPORAL_ADDRESS (or TEMPORAL_PROFILE) to your server.',
    );
  }
}
