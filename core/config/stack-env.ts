/**
 * @file $CLIPEVAL_HOME/stack.env: the variables `npm run stack:up` writes
 * (infra/local-stack/stack.ts) and the CLI and workers read back for whatever the environment
 * leaves unset. The file lives in ./.clipeval/ of the current directory by default, so a checkout
 * can bring one along: reading it is deliberately narrow.
 *
 * - Only the variables of STACK_ENV_VARIABLES (what stack:up writes); any other name is ignored.
 * - Its Temporal settings apply as a whole, and not at all when the environment sets
 *   TEMPORAL_ADDRESS, TEMPORAL_API_KEY, a config-file profile or any TEMPORAL_TLS* variable to
 *   something else: the file would otherwise send the user's API key or client certificate to a
 *   server it names.
 * - Its S3 settings apply as a whole (an endpoint only with the file's own keys), and not at all
 *   when the environment sets CLIPEVAL_S3_ENDPOINT, AWS_SESSION_TOKEN, or AWS keys other than the
 *   file's: requests signed with the user's credentials never go to an endpoint the file names.
 * - Addresses must be loopback (stack:up binds nothing else).
 * - The file must be a regular file owned by the current user and private to them (mode 600, as
 *   stack:up writes it); a stack.env that arrived with a checkout or archive (0644) is refused.
 *
 * Values are single-quoted for the shell, since users are told to `set -a; . stack.env`:
 * formatEnvFile writes that quoting and parseEnvFile reads it back (and nothing the shell would
 * expand).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from './errors';
import { TEMPORAL_CONNECTION_VARIABLES } from './temporal-env';

/** The variables `stack:up` writes to stack.env, and the only ones read back from it. */
export const STACK_ENV_VARIABLES = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'CLIPEVAL_S3_ENDPOINT',
  'CLIPEVAL_BUCKET',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
] as const;
export type StackEnvVariable = (typeof STACK_ENV_VARIABLES)[number];

/**
 * The file's two groups. `guards`: set in the environment to a value other than the file's, they
 * make clipeval ignore the whole group (the environment routes that service, or holds credentials
 * that would otherwise be sent to the file's server).
 */
const GROUPS: { name: string; variables: StackEnvVariable[]; guards: string[] }[] = [
  {
    name: 'Temporal',
    variables: ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE'],
    guards: [...TEMPORAL_CONNECTION_VARIABLES],
  },
  {
    name: 'S3',
    variables: [
      'CLIPEVAL_S3_ENDPOINT',
      'CLIPEVAL_BUCKET',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_REGION',
    ],
    guards: [
      'CLIPEVAL_S3_ENDPOINT',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
    ],
  },
];

/** Where the local stack keeps its state: $CLIPEVAL_HOME, default ./.clipeval. */
export function clipevalHome(cwd = process.cwd()): string {
  return resolve(cwd, process.env.CLIPEVAL_HOME ?? '.clipeval');
}

/** The env file `npm run stack:up` writes into a stack home: the one place its path is built. */
export function stackEnvFile(home = clipevalHome()): string {
  return join(home, 'stack.env');
}

/** A value in single quotes for a POSIX shell (`'` written as `'\''`). */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** stack.env's text: one `NAME='value'` line per variable, safe to source from a shell. */
export function formatEnvFile(vars: Record<StackEnvVariable, string>): string {
  const lines = STACK_ENV_VARIABLES.map((name) => `${name}=${shellQuote(vars[name])}`);
  return `# Written by \`npm run stack:up\`. Load it with: set -a; . ./stack.env; set +a\n${lines.join('\n')}\n`;
}

const UNQUOTED = /[A-Za-z0-9_./:@%+,=-]/;

/**
 * Parses an env file as formatEnvFile writes it: `NAME=value` or `export NAME=value` lines, blank
 * lines and # comments. A value is a run of single-quoted parts, backslash-escaped characters and
 * plain characters (letters, digits, `_./:@%+,=-`); anything a shell would expand or split ($, `,
 * ", spaces outside quotes...) is an error naming the line (never the value: it may be a secret).
 */
export function parseEnvFile(text: string, where = 'stack.env'): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const bad = (why: string) => new ConfigError(`${where} line ${i + 1}: ${why}`, where);
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw bad('expected NAME=value');
    const [, name, value] = m as unknown as [string, string, string];
    let parsed = '';
    for (let j = 0; j < value.length;) {
      const c = value[j]!;
      if (c === "'") {
        const end = value.indexOf("'", j + 1);
        if (end < 0) throw bad(`the value of ${name} has an unterminated quote`);
        parsed += value.slice(j + 1, end);
        j = end + 1;
      } else if (c === '\\' && j + 1 < value.length) {
        parsed += value[j + 1];
        j += 2;
      } else if (UNQUOTED.test(c)) {
        parsed += c;
        j += 1;
      } else {
        throw bad(
          `the value of ${name} is not single-quoted the way stack:up writes it (found ${JSON.stringify(c)} outside quotes)`,
        );
      }
    }
    out[name] = parsed;
  });
  return out;
}

/** What the last loadStackEnvDefaults did: the variables it filled and those it refused, why. */
export interface StackEnvReport {
  file: string;
  applied: StackEnvVariable[];
  ignored: { variables: string[]; reason: string }[];
}

let lastReport: StackEnvReport | undefined;
/** Variables this process took from stack.env. */
const filled = new Set<string>();

/** Where a variable's value came from, for error messages that say where clipeval looked. */
export function envSource(name: string): string {
  if (lastReport?.applied.includes(name as StackEnvVariable))
    return `${name} from ${lastReport.file}`;
  if (process.env[name] !== undefined) return `${name} from the environment`;
  // Unset, yet stack.env had it: say why the file was not used.
  const ignored = lastReport?.ignored.find((g) => g.variables.includes(name));
  return ignored
    ? `${name} unset, default; ${lastReport!.file} was not used for it: ${ignored.reason}`
    : `${name} unset, default`;
}

/** For configuration errors: what of stack.env was not used, and why ('' when all was). */
export function stackEnvNote(): string {
  if (!lastReport || lastReport.ignored.length === 0) return '';
  const lines = lastReport.ignored.map((g) => `  - ${g.variables.join(', ')}: ${g.reason}`);
  return `\nNot taken from ${lastReport.file}:\n${lines.join('\n')}`;
}

/**
 * Reads $CLIPEVAL_HOME/stack.env (if any) and lets it fill the variables process.env leaves
 * unset, under the rules in this file's header. Throws a ConfigError (naming the file and the fix)
 * for a file that is not private to the current user, is malformed, or names a non-loopback
 * server. Returns what it applied and ignored (undefined when there is no file).
 */
export function loadStackEnvDefaults(cwd = process.cwd()): StackEnvReport | undefined {
  const file = stackEnvFile(clipevalHome(cwd));
  const text = readPrivateFile(file);
  if (text === undefined) return undefined;
  const values = parseEnvFile(text, file);
  const report: StackEnvReport = { file, applied: [], ignored: [] };
  const unknown = Object.keys(values).filter(
    (k) => !(STACK_ENV_VARIABLES as readonly string[]).includes(k),
  );
  if (unknown.length > 0)
    report.ignored.push({ variables: unknown, reason: 'stack:up never writes these' });
  checkLoopback(file, values);
  for (const group of GROUPS) {
    const missing = group.variables.filter((v) => values[v] === undefined);
    const conflict = group.guards.filter(
      (g) => process.env[g] !== undefined && process.env[g] !== values[g],
    );
    const reason =
      missing.length > 0
        ? `its ${group.name} settings are incomplete (no ${missing.join(', ')})`
        : conflict.length > 0
          ? `its ${group.name} settings are not used because the environment sets ${conflict.join(', ')}`
          : undefined;
    if (reason) {
      report.ignored.push({ variables: group.variables, reason });
      continue;
    }
    for (const name of group.variables) {
      if (process.env[name] === undefined) {
        process.env[name] = values[name];
        filled.add(name);
      }
      // Filled by an earlier call of this process (a CLI command may load twice): still the file's.
      if (filled.has(name) && process.env[name] === values[name]) report.applied.push(name);
    }
  }
  lastReport = report;
  return report;
}

/**
 * The file's text, or undefined if there is none. Refuses a symbolic link, a file owned by
 * another user, and one that group or others may read or write (checked on the open descriptor).
 */
function readPrivateFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP')
      throw refuse(file, 'it is a symbolic link (stack:up writes a regular file)');
    throw refuse(file, `it cannot be read (${(err as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(file, 'it is not a regular file');
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid)
      throw refuse(file, `it is owned by uid ${st.uid}, not by you (uid ${uid})`);
    if ((st.mode & 0o077) !== 0)
      throw refuse(
        file,
        `its mode is ${(st.mode & 0o777).toString(8)}: group or others may read or change it (stack:up writes it with mode 600)`,
      );
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

function refuse(file: string, why: string): ConfigError {
  return new ConfigError(
    `Refusing to read ${file}: ${why}. If you wrote it with \`npm run stack:up\`, run \`chmod 600 ${file}\`; ` +
      'otherwise delete it (or set CLIPEVAL_HOME to your own stack folder) and run `npm run stack:up`.',
    'stack.env',
  );
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/** stack:up binds loopback only: a stack.env naming another host was not written by it. */
function checkLoopback(file: string, values: Record<string, string>): void {
  const hosts: [string, string | undefined][] = [
    ['TEMPORAL_ADDRESS', values.TEMPORAL_ADDRESS?.replace(/:\d+$/, '')],
    ['CLIPEVAL_S3_ENDPOINT', endpointHost(values.CLIPEVAL_S3_ENDPOINT)],
  ];
  for (const [name, host] of hosts) {
    if (host !== undefined && !LOOPBACK_HOST.test(host)) {
      throw new ConfigError(
        `Refusing to read ${file}: ${name} names host "${host}", but the local stack only listens on 127.0.0.1. ` +
          'Delete the file and run `npm run stack:up`, or export the variable yourself.',
        'stack.env',
      );
    }
  }
}

function endpointHost(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).hostname;
  } catch {
    return url; // not a URL: refused as not loopback
  }
}
