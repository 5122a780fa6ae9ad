/**
 * @file Where the Temporal client and workers connect, read the way every Temporal SDK and the
 * Temporal CLI read it (@temporalio/envconfig): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH,
 * TEMPORAL_TLS_SERVER_CA_CERT_PATH (or the `_DATA` forms), TEMPORAL_TLS_SERVER_NAME and
 * TEMPORAL_GRPC_META_*, over a profile of a TOML config file (TEMPORAL_PROFILE,
 * TEMPORAL_CONFIG_FILE). Environment variables win over the profile, as in the SDKs.
 *
 * One difference, on purpose: the config file is read only when TEMPORAL_PROFILE or
 * TEMPORAL_CONFIG_FILE is set, not from ~/.config/temporalio/temporal.toml unasked. A default
 * profile pointing at a cloud namespace would otherwise attach its API key or client certificate
 * to the local stack's address that `stack:up` hands out (core/config/stack-env.ts).
 *
 * clipeval's names before it took Temporal's (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY,
 * TEMPORAL_TLS_CA) still work, with a deprecation warning.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  type ClientConfigProfile,
  type ClientConfigTLS,
  loadClientConfigProfile,
} from '@temporalio/envconfig';
import { ConfigError } from './errors';

/** clipeval's former variable names and the Temporal names that replace them. */
export const DEPRECATED_TEMPORAL_VARIABLES = {
  TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
} as const;

/** Every variable that routes or authenticates the Temporal connection. */
export const TEMPORAL_CONNECTION_VARIABLES = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_API_KEY',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  ...Object.keys(DEPRECATED_TEMPORAL_VARIABLES),
] as const;

export interface TemporalSettings {
  address: string;
  namespace: string;
  apiKey?: string;
  /** Whether the connection uses TLS at all (an API key or any TLS setting turns it on). */
  tls: boolean;
  /** Certificates and server name, as envconfig's profile holds them; read when connecting. */
  tlsConfig?: ClientConfigTLS;
  /** gRPC headers (TEMPORAL_GRPC_META_*). */
  metadata?: Record<string, string>;
  /** The config-file profile read, when one was. */
  profile?: string;
}

const ADDRESS = /^[^\s:/]+:\d{1,5}$/;

export function loadTemporalSettings(env: NodeJS.ProcessEnv): TemporalSettings {
  const vars = withDeprecatedAliases(env);
  const fromFile = vars.TEMPORAL_PROFILE !== undefined || vars.TEMPORAL_CONFIG_FILE !== undefined;
  if (vars.TEMPORAL_CONFIG_FILE !== undefined) assertConfigFile(vars.TEMPORAL_CONFIG_FILE);
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({
      overrideEnvVars: vars,
      disableFile: !fromFile,
      configFileStrict: true,
    });
  } catch (err) {
    throw new ConfigError(
      `Invalid Temporal configuration (${fromFile ? `profile ${vars.TEMPORAL_PROFILE ?? 'default'} of ${vars.TEMPORAL_CONFIG_FILE ?? '~/.config/temporalio/temporal.toml'}` : 'environment'}): ${(err as Error).message}`,
      'environment',
    );
  }
  const address = profile.address ?? 'localhost:7233';
  if (!ADDRESS.test(address))
    throw new ConfigError(
      `Invalid environment configuration: TEMPORAL_ADDRESS (or the profile's address) ${JSON.stringify(address)}: expected host:port, e.g. localhost:7233.`,
      'environment',
    );
  const tlsConfig = profile.tls;
  if ((tlsConfig?.clientCert === undefined) !== (tlsConfig?.clientKey === undefined))
    throw new ConfigError(
      'Invalid environment configuration: TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together (the client certificate and its private key, PEM files).',
      'environment',
    );
  const tls =
    tlsConfig?.disabled === true ? false : tlsConfig !== undefined || profile.apiKey !== undefined;
  return {
    address,
    namespace: profile.namespace ?? 'default',
    ...(profile.apiKey ? { apiKey: profile.apiKey } : {}),
    tls,
    ...(tls && tlsConfig ? { tlsConfig } : {}),
    ...(profile.grpcMeta && Object.keys(profile.grpcMeta).length > 0
      ? { metadata: profile.grpcMeta }
      : {}),
    ...(fromFile ? { profile: vars.TEMPORAL_PROFILE ?? 'default' } : {}),
  };
}

/** The environment with each deprecated name moved to its Temporal name (warned about once). */
function withDeprecatedAliases(env: NodeJS.ProcessEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v;
  for (const [old, current] of Object.entries(DEPRECATED_TEMPORAL_VARIABLES)) {
    const value = vars[old];
    if (value === undefined) continue;
    if (vars[current] !== undefined && vars[current] !== value)
      throw new ConfigError(
        `Invalid environment configuration: ${old} (deprecated) and ${current} name different files; unset ${old}.`,
        'environment',
      );
    vars[current] = value;
    delete vars[old];
    process.emitWarning(`${old} is deprecated: set ${current} (Temporal's name) instead.`, {
      type: 'DeprecationWarning',
      code: `CLIPEVAL_${old}`,
    });
  }
  return vars;
}

function assertConfigFile(path: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    // reported below
  }
  if (!isFile)
    throw new ConfigError(
      `TEMPORAL_CONFIG_FILE=${path} is not a readable file: point it at a Temporal TOML config file, or unset it.`,
      'environment',
    );
}

/** The TLS option of a Temporal connection: false, true (system roots), or certificates. */
export type TemporalTls =
  | boolean
  | {
      serverNameOverride?: string;
      serverRootCACertificate?: Uint8Array;
      clientCertPair?: { crt: Uint8Array; key: Uint8Array };
    };

/** Reads the PEM files (or inline data) named by the settings; a ConfigError names a bad one. */
export function temporalTls(t: TemporalSettings): TemporalTls {
  const c = t.tlsConfig;
  if (!t.tls || c === undefined) return t.tls;
  const read = (source: ClientConfigTLS['clientCert'], variable: string) => {
    if (source === undefined) return undefined;
    if ('data' in source)
      return typeof source.data === 'string' ? Buffer.from(source.data) : source.data;
    try {
      return readFileSync(source.path);
    } catch (err) {
      throw new ConfigError(
        `Cannot read ${variable}=${source.path}: ${(err as Error).message}. Point it at a PEM file.`,
        'environment',
      );
    }
  };
  const ca = read(c.serverCACert, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  const crt = read(c.clientCert, 'TEMPORAL_TLS_CLIENT_CERT_PATH');
  const key = read(c.clientKey, 'TEMPORAL_TLS_CLIENT_KEY_PATH');
  const options = {
    ...(c.serverName ? { serverNameOverride: c.serverName } : {}),
    ...(ca ? { serverRootCACertificate: ca } : {}),
    ...(crt && key ? { clientCertPair: { crt, key } } : {}),
  };
  // Nothing but `TEMPORAL_TLS=true`: TLS with the system's roots.
  return Object.keys(options).length > 0 ? options : true;
}
