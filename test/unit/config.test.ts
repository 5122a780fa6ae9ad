import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../core/config/errors';
import { loadEnv, parseEnvFile, temporalTls } from '../../core/config/env';
import { loadRunSpec, parseRunSpec } from '../../core/config/run-spec';
import { chmodSync, chownSync, mkdirSync, symlinkSync } from 'node:fs';
import {
  envSource,
  formatEnvFile,
  loadStackEnvDefaults,
  STACK_ENV_VARIABLES,
  type StackEnvVariable,
} from '../../core/config/stack-env';

describe('environment configuration', () => {
  it('applies defaults and reads the bucket', () => {
    const env = loadEnv({ CLIPEVAL_BUCKET: 'my-bucket' });
    expect(env.temporal).toEqual({ address: 'localhost:7233', namespace: 'default', tls: false });
    expect(env.s3).toEqual({ region: 'us-east-1', bucket: 'my-bucket' });
    expect(env.queues).toEqual({ cpu: 'clipeval-cpu', gpu: 'clipeval-gpu' });
    expect(env.bundleCache).toMatch(/\.cache\/clipeval\/bundles$/);
  });

  it('names every invalid variable and the expected form', () => {
    const run = () =>
      loadEnv({
        CLIPEVAL_BUCKET: 'Bad_Bucket',
        TEMPORAL_ADDRESS: 'http://x',
        CLIPEVAL_S3_ENDPOINT: 'ftp://x',
      });
    expect(run).toThrow(ConfigError);
    try {
      run();
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toMatch(/CLIPEVAL_BUCKET: expected an S3 bucket name/);
      expect(msg).toMatch(/TEMPORAL_ADDRESS: expected host:port/);
      expect(msg).toMatch(/CLIPEVAL_S3_ENDPOINT: expected an http\(s\) URL/);
    }
  });

  it('reads ONNX Runtime settings: providers in fallback order and threads', () => {
    expect(loadEnv({ CLIPEVAL_BUCKET: 'abc' }).onnx).toEqual({ providers: ['cpu'], threads: 0 });
    const env = loadEnv({
      CLIPEVAL_BUCKET: 'abc',
      CLIPEVAL_EXECUTION_PROVIDERS: 'cuda,webgpu,cpu',
      CLIPEVAL_ORT_THREADS: '4',
    });
    expect(env.onnx).toEqual({ providers: ['cuda', 'webgpu', 'cpu'], threads: 4 });
    expect(() => loadEnv({ CLIPEVAL_BUCKET: 'abc', CLIPEVAL_EXECUTION_PROVIDERS: 'gpu' })).toThrow(
      /CLIPEVAL_EXECUTION_PROVIDERS: expected a comma-separated list of cuda, webgpu, cpu/,
    );
  });

  it('requires a bucket', () => {
    expect(() => loadEnv({})).toThrow(/CLIPEVAL_BUCKET/);
  });

  it('names $CLIPEVAL_HOME/stack.env in its error when CLIPEVAL_HOME is set', () => {
    const previous = process.env.CLIPEVAL_HOME;
    const home = mkdtempSync(join(tmpdir(), 'clipeval-home-'));
    process.env.CLIPEVAL_HOME = home;
    try {
      expect(() => loadEnv({})).toThrow(`which writes ${join(home, 'stack.env')})`);
    } finally {
      if (previous === undefined) delete process.env.CLIPEVAL_HOME;
      else process.env.CLIPEVAL_HOME = previous;
    }
  });

  it('turns TLS on with an API key (Temporal Cloud)', () => {
    expect(loadEnv({ CLIPEVAL_BUCKET: 'abc', TEMPORAL_API_KEY: 'k' }).temporal.tls).toBe(true);
  });

  it('parses stack.env files', () => {
    expect(parseEnvFile("A=1\nexport B=two\n# c\nC='x y'\n")).toEqual({
      A: '1',
      B: 'two',
      C: 'x y',
    });
  });
});

describe('Temporal connection settings (Temporal names, envconfig profiles)', () => {
  const base = { CLIPEVAL_BUCKET: 'abc' };
  const pems = () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-tls-'));
    for (const f of ['c.pem', 'k.pem', 'ca.pem']) writeFileSync(join(dir, f), `-----${f}-----`);
    return (f: string) => join(dir, f);
  };
  type TlsObject = Exclude<ReturnType<typeof temporalTls>, boolean>;

  it('TLS is off by default, on with TEMPORAL_TLS or an API key, off when TEMPORAL_TLS=false', () => {
    expect(temporalTls(loadEnv(base).temporal)).toBe(false);
    expect(temporalTls(loadEnv({ ...base, TEMPORAL_TLS: 'true' }).temporal)).toBe(true);
    expect(temporalTls(loadEnv({ ...base, TEMPORAL_API_KEY: 'k' }).temporal)).toBe(true);
    // Temporal's own rule (envconfig): an explicit TEMPORAL_TLS=false wins over the API key.
    const off = loadEnv({ ...base, TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }).temporal;
    expect(temporalTls(off)).toBe(false);
  });

  it("reads the mTLS pair, CA and server name from Temporal's variable names", () => {
    const pem = pems();
    const env = loadEnv({
      ...base,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pem('c.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: pem('k.pem'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      TEMPORAL_GRPC_META_X_TEAM: 'vision',
    });
    expect(env.temporal.tls).toBe(true);
    expect(env.temporal.metadata).toEqual({ 'x-team': 'vision' });
    const tls = temporalTls(env.temporal) as TlsObject;
    expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe('-----c.pem-----');
    expect(Buffer.from(tls.clientCertPair!.key).toString()).toBe('-----k.pem-----');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toBe('-----ca.pem-----');
    expect(tls.serverNameOverride).toBe('temporal.internal');
  });

  it('keeps the former names as deprecated aliases, with a warning', () => {
    const pem = pems();
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const env = loadEnv({
        ...base,
        TEMPORAL_TLS_CERT: pem('c.pem'),
        TEMPORAL_TLS_KEY: pem('k.pem'),
        TEMPORAL_TLS_CA: pem('ca.pem'),
      });
      const tls = temporalTls(env.temporal) as TlsObject;
      expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe('-----c.pem-----');
      expect(Buffer.from(tls.serverRootCACertificate!).toString()).toBe('-----ca.pem-----');
      const messages = warn.mock.calls.map((c) => String(c[0]));
      expect(messages).toContain(
        "TEMPORAL_TLS_CERT is deprecated: set TEMPORAL_TLS_CLIENT_CERT_PATH (Temporal's name) instead.",
      );
      expect(messages).toHaveLength(3);
      expect(() =>
        loadEnv({ ...base, TEMPORAL_TLS_CA: '/a.pem', TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/b.pem' }),
      ).toThrow(
        /TEMPORAL_TLS_CA \(deprecated\) and TEMPORAL_TLS_SERVER_CA_CERT_PATH name different files/,
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses a certificate without its key, and names an unreadable file', () => {
    expect(() => loadEnv({ ...base, TEMPORAL_TLS_CLIENT_CERT_PATH: '/x.pem' })).toThrow(
      /TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together/,
    );
    const env = loadEnv({ ...base, TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/nonexistent/ca.pem' });
    expect(() => temporalTls(env.temporal)).toThrow(
      /Cannot read TEMPORAL_TLS_SERVER_CA_CERT_PATH=\/nonexistent\/ca.pem/,
    );
  });

  it('reads a profile of a TOML config file when asked, the environment winning over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-envconfig-'));
    const file = join(dir, 'temporal.toml');
    writeFileSync(
      file,
      [
        '[profile.default]',
        'address = "localhost:7233"',
        '[profile.prod]',
        'address = "prod.tmprl.example:7233"',
        'namespace = "clipeval.a1b2c"',
        'api_key = "secret"',
      ].join('\n'),
    );
    const prod = loadEnv({ ...base, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' });
    expect(prod.temporal).toMatchObject({
      address: 'prod.tmprl.example:7233',
      namespace: 'clipeval.a1b2c',
      apiKey: 'secret',
      tls: true,
      profile: 'prod',
    });
    const overridden = loadEnv({
      ...base,
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_NAMESPACE: 'other',
    });
    expect(overridden.temporal.namespace).toBe('other');
    expect(() =>
      loadEnv({ ...base, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'nope' }),
    ).toThrow(
      /Invalid Temporal configuration \(profile nope of .*temporal\.toml\): Profile 'nope' not found/,
    );
    expect(() => loadEnv({ ...base, TEMPORAL_CONFIG_FILE: join(dir, 'missing.toml') })).toThrow(
      /TEMPORAL_CONFIG_FILE=.*missing\.toml is not a readable file/,
    );
    writeFileSync(join(dir, 'bad.toml'), '[profile.default]\nadress = "typo:1"\n');
    expect(() => loadEnv({ ...base, TEMPORAL_CONFIG_FILE: join(dir, 'bad.toml') })).toThrow(
      /Invalid Temporal configuration.*adress/,
    );
  });

  it('does not read ~/.config/temporalio/temporal.toml unasked', () => {
    const home = mkdtempSync(join(tmpdir(), 'clipeval-home-'));
    mkdirSync(join(home, '.config', 'temporalio'), { recursive: true });
    writeFileSync(
      join(home, '.config', 'temporalio', 'temporal.toml'),
      '[profile.default]\naddress = "cloud.example:7233"\napi_key = "secret"\n',
    );
    const env = loadEnv({ ...base, HOME: home, XDG_CONFIG_HOME: join(home, '.config') });
    expect(env.temporal).toEqual({ address: 'localhost:7233', namespace: 'default', tls: false });
  });
});

describe('run spec', () => {
  it('fills defaults', () => {
    const spec = parseRunSpec({ dataset: { uri: 's3://bkt/data/' } });
    expect(spec).toEqual({
      dataset: {
        uri: 's3://bkt/data/',
        format: 'auto',
        layout: 'auto',
        splitRatio: { train: 0.8, val: 0.1, test: 0.1 },
        splitSeed: 0,
      },
      model: {},
      shardSize: 1024,
      extraction: {
        batchSize: 32,
        concurrency: 8,
        parallelism: 4,
        heartbeatTimeoutSeconds: 120,
        augmentedViews: 0,
        augmentSeed: 0,
        preprocessing: 'exact',
        pixelCache: 'readwrite',
      },
      classNames: {},
      zeroShot: { enabled: true, templates: 'default', protocol: 'all-classes' },
      coop: {
        enabled: true,
        nCtx: 16,
        init: 'random',
        classTokenPosition: 'end',
        classSpecific: false,
        lr: 0.002,
        momentum: 0.9,
        weightDecay: 5e-4,
        batchSize: 32,
        warmupEpochs: 1,
        warmupLr: 1e-5,
        useAugmentedViews: true,
        heartbeatTimeoutSeconds: 300,
        protocol: 'all-classes',
      },
      probe: {
        enabled: true,
        recipe: 'lbfgs',
        fullData: true,
        maxIterations: 1000,
        epochs: 10,
        lr: 0.1,
        batchSize: 64,
      },
      // Off by default: existing specs and schedule baselines keep the routes they had.
      tipAdapter: {
        enabled: false,
        finetune: true,
        searchScale: [7, 3],
        searchStep: [200, 20],
        initAlpha: 1,
        initBeta: 1,
        epochs: 20,
        lr: 0.001,
        batchSize: 256,
        protocol: 'all-classes',
      },
      retrieval: { enabled: 'auto', k: [1, 5, 10], batchSize: 256 },
      fewShot: { shots: [16], seeds: [1] },
      regression: { maxDrop: 0.02, metric: 'acc1' },
    });
  });

  it('refuses Tip-Adapter grids that would not start below their end, and unknown fields', () => {
    const base = { dataset: { uri: 's3://bkt/d/' } };
    expect(() => parseRunSpec({ ...base, tipAdapter: { searchScale: [0.1, 3] } })).toThrow(
      /tipAdapter\.searchScale.*above 0\.1/s,
    );
    expect(() => parseRunSpec({ ...base, tipAdapter: { searchStep: [0, 20] } })).toThrow(
      /tipAdapter\.searchStep/,
    );
    expect(() => parseRunSpec({ ...base, tipAdapter: { protocol: 'new-only' } })).toThrow(
      /tipAdapter\.protocol/,
    );
    expect(() => parseRunSpec({ ...base, tipAdapter: { alpha: 1 } })).toThrow(
      /Unrecognized key.*alpha/,
    );
  });

  it('rejects templates without the {c} placeholder and unknown route fields', () => {
    const base = { dataset: { uri: 's3://bkt/d/' } };
    expect(() => parseRunSpec({ ...base, zeroShot: { templates: ['a photo'] } })).toThrow(
      /zeroShot\.templates.*\{c\} placeholder/s,
    );
    expect(() => parseRunSpec({ ...base, coop: { nctx: 4 } })).toThrow(/Unrecognized key.*nctx/);
    expect(() => parseRunSpec({ ...base, probe: { recipe: 'sgd' } })).toThrow(/probe\.recipe/);
    expect(() => parseRunSpec({ ...base, fewShot: { shots: [] } })).toThrow(/fewShot\.shots/);
  });

  it.each([
    [{ dataset: { uri: 'bkt/data' } }, /dataset\.uri: expected s3:\/\/bucket\/prefix/],
    [{ dataset: { uri: 's3://bkt/d' }, shardSize: 0 }, /shardSize: .*>=1/],
    [{ dataset: { uri: 's3://bkt/d' }, shardsize: 5 }, /Unrecognized key.*shardsize/],
    [
      { dataset: { uri: 's3://bkt/d', splitRatio: { train: 0.5, val: 0.1, test: 0.1 } } },
      /dataset\.splitRatio: train \+ val \+ test must add up to 1/,
    ],
    [{ dataset: { uri: 's3://bkt/d', layout: 'flat' } }, /dataset\.layout: .*"auto"/],
    [{}, /dataset: .*expected object/],
  ])('rejects %j naming the field', (input, message) => {
    expect(() => parseRunSpec(input)).toThrow(message);
  });

  it('reads YAML and JSON files, with --dataset overriding the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-spec-'));
    writeFileSync(
      join(dir, 'run.yaml'),
      'dataset:\n  uri: s3://bkt/a/\n  splitSeed: 7\nshardSize: 64\n',
    );
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ dataset: { uri: 's3://bkt/b/' } }));
    const yaml = await loadRunSpec({
      file: join(dir, 'run.yaml'),
      datasetUri: 's3://bkt/override/',
    });
    expect(yaml.dataset.uri).toBe('s3://bkt/override/');
    expect(yaml.dataset.splitSeed).toBe(7);
    expect(yaml.shardSize).toBe(64);
    expect((await loadRunSpec({ file: join(dir, 'run.json') })).dataset.uri).toBe('s3://bkt/b/');
  });

  it('reports unreadable and malformed files with their path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-spec-'));
    writeFileSync(join(dir, 'bad.yaml'), 'dataset: [unclosed');
    writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
    await expect(loadRunSpec({ file: join(dir, 'missing.yaml') })).rejects.toThrow(
      /Cannot read run spec .*missing\.yaml/,
    );
    await expect(loadRunSpec({ file: join(dir, 'bad.yaml') })).rejects.toThrow(
      /bad\.yaml is not valid YAML/,
    );
    await expect(loadRunSpec({ file: join(dir, 'list.yaml') })).rejects.toThrow(
      /must be a mapping/,
    );
  });
});

describe('stack.env (issue 12, item 8: trusted blindly)', () => {
  const STACK: Record<StackEnvVariable, string> = {
    TEMPORAL_ADDRESS: '127.0.0.1:7233',
    TEMPORAL_NAMESPACE: 'default',
    CLIPEVAL_S3_ENDPOINT: 'http://127.0.0.1:7070',
    CLIPEVAL_BUCKET: 'clipeval',
    AWS_ACCESS_KEY_ID: 'stackkey',
    AWS_SECRET_ACCESS_KEY: 'stacksecret',
    AWS_REGION: 'us-east-1',
  };
  /** Every variable stack.env could touch, plus the guards, cleared for each test. */
  const TOUCHED = [
    ...STACK_ENV_VARIABLES,
    'CLIPEVAL_HOME',
    'CLIPEVAL_DEFAULT_BUNDLE',
    'PATH_EXTRA',
    'TEMPORAL_API_KEY',
    'TEMPORAL_TLS',
    'TEMPORAL_TLS_CERT',
    'TEMPORAL_TLS_KEY',
    'TEMPORAL_TLS_CLIENT_CERT_PATH',
    'TEMPORAL_PROFILE',
    'AWS_SESSION_TOKEN',
  ];

  /** Runs `fn` with `env` as the only values of TOUCHED in process.env, then restores them. */
  function withEnv<T>(env: Record<string, string>, fn: () => T): T {
    const saved = Object.fromEntries(TOUCHED.map((k) => [k, process.env[k]]));
    for (const k of TOUCHED) delete process.env[k];
    Object.assign(process.env, env);
    try {
      return fn();
    } finally {
      for (const k of TOUCHED) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  }

  /** A checkout folder whose ./.clipeval/stack.env has `text` (mode 600 unless told). */
  function checkout(text: string, mode = 0o600): { cwd: string; file: string } {
    const cwd = mkdtempSync(join(tmpdir(), 'clipeval-checkout-'));
    mkdirSync(join(cwd, '.clipeval'));
    const file = join(cwd, '.clipeval', 'stack.env');
    writeFileSync(file, text, { mode });
    chmodSync(file, mode);
    return { cwd, file };
  }

  it('quotes values for the shell and reads the quoting back', () => {
    const tricky = { ...STACK, AWS_SECRET_ACCESS_KEY: `it's $(rm -rf ~) "x" \`y\` a b` };
    const text = formatEnvFile(tricky);
    expect(text).toContain(`AWS_SECRET_ACCESS_KEY='it'\\''s $(rm -rf ~) "x" \`y\` a b'`);
    expect(parseEnvFile(text)).toEqual(tricky);
  });

  it('refuses values a shell would expand or split, naming the line but not the value', () => {
    expect(() => parseEnvFile('A=ok\nTEMPORAL_ADDRESS=$(curl evil)\n')).toThrow(
      /stack\.env line 2: the value of TEMPORAL_ADDRESS is not single-quoted/,
    );
    expect(() => parseEnvFile('B="secret value"')).toThrow(/line 1/);
    expect(() => parseEnvFile("C='unterminated")).toThrow(/unterminated quote/);
    expect(() => parseEnvFile('D=a b')).toThrow(/line 1/);
    try {
      parseEnvFile('E="hunter2"');
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  it('takes only the variables stack:up writes (never CLIPEVAL_DEFAULT_BUNDLE)', () => {
    const { cwd } = checkout(
      formatEnvFile(STACK) +
        "CLIPEVAL_DEFAULT_BUNDLE='s3://evil/bundle/'\nPATH_EXTRA='/tmp/evil'\n",
    );
    withEnv({}, () => {
      const report = loadStackEnvDefaults(cwd)!;
      expect([...report.applied].sort()).toEqual([...STACK_ENV_VARIABLES].sort());
      expect(process.env.CLIPEVAL_DEFAULT_BUNDLE).toBeUndefined();
      expect(process.env.PATH_EXTRA).toBeUndefined();
      expect(report.ignored).toContainEqual({
        variables: ['CLIPEVAL_DEFAULT_BUNDLE', 'PATH_EXTRA'],
        reason: 'stack:up never writes these',
      });
      expect(process.env.TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
      expect(envSource('TEMPORAL_ADDRESS')).toMatch(/TEMPORAL_ADDRESS from .*stack\.env/);
      // Loading again (a command may) changes nothing and still credits the file.
      expect(loadStackEnvDefaults(cwd)!.applied).toHaveLength(STACK_ENV_VARIABLES.length);
      expect(envSource('TEMPORAL_ADDRESS')).toMatch(/TEMPORAL_ADDRESS from .*stack\.env/);
    });
  });

  it('never routes Temporal when the environment holds a Temporal API key or TLS settings', () => {
    const { cwd } = checkout(formatEnvFile(STACK));
    for (const guard of [
      'TEMPORAL_API_KEY',
      'TEMPORAL_TLS',
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      'TEMPORAL_PROFILE',
    ]) {
      withEnv({ [guard]: 'x', CLIPEVAL_BUCKET: 'mine' }, () => {
        loadStackEnvDefaults(cwd);
        expect(process.env.TEMPORAL_ADDRESS).toBeUndefined();
        expect(process.env.TEMPORAL_NAMESPACE).toBeUndefined();
        // The S3 group is independent, and the environment's own values still win within it.
        expect(process.env.CLIPEVAL_S3_ENDPOINT).toBe('http://127.0.0.1:7070');
        expect(process.env.CLIPEVAL_BUCKET).toBe('mine');
        expect(envSource('TEMPORAL_ADDRESS')).toContain(
          `its Temporal settings are not used because the environment sets ${guard}`,
        );
        expect(() => loadEnv({ TEMPORAL_ADDRESS: 'x' })).toThrow(
          /Not taken from .*stack\.env:\n {2}- TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: its Temporal settings/,
        );
      });
    }
    // An exported TEMPORAL_ADDRESS (a server of the user's own) also keeps the file's namespace out.
    withEnv({ TEMPORAL_ADDRESS: 'temporal.example.com:7233' }, () => {
      loadStackEnvDefaults(cwd);
      expect(process.env.TEMPORAL_NAMESPACE).toBeUndefined();
    });
  });

  it("never sends the environment's AWS credentials to the file's S3 endpoint", () => {
    const { cwd } = checkout(formatEnvFile(STACK));
    const exported: Record<string, string>[] = [
      { AWS_ACCESS_KEY_ID: 'AKIAUSERKEY', AWS_SECRET_ACCESS_KEY: 'usersecret' },
      { AWS_SESSION_TOKEN: 'token' },
      { CLIPEVAL_S3_ENDPOINT: 'https://s3.example.com' },
    ];
    for (const env of exported) {
      withEnv(env, () => {
        loadStackEnvDefaults(cwd);
        expect(process.env.CLIPEVAL_BUCKET).toBeUndefined();
        expect(process.env.AWS_REGION).toBeUndefined();
        if (!('CLIPEVAL_S3_ENDPOINT' in env))
          expect(process.env.CLIPEVAL_S3_ENDPOINT).toBeUndefined();
        expect(process.env.TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
      });
    }
    // The same keys as the file's (stack:up adopts exported keys): nothing new is sent, so it applies.
    withEnv({ AWS_ACCESS_KEY_ID: 'stackkey' }, () => {
      loadStackEnvDefaults(cwd);
      expect(process.env.CLIPEVAL_S3_ENDPOINT).toBe('http://127.0.0.1:7070');
      expect(process.env.AWS_SECRET_ACCESS_KEY).toBe('stacksecret');
    });
    // An endpoint without the file's own keys would be signed with ambient credentials: refused.
    const keyless = checkout(
      formatEnvFile(STACK)
        .split('\n')
        .filter((l) => !l.startsWith('AWS_'))
        .join('\n'),
    );
    withEnv({}, () => {
      loadStackEnvDefaults(keyless.cwd);
      expect(process.env.CLIPEVAL_S3_ENDPOINT).toBeUndefined();
      expect(envSource('CLIPEVAL_S3_ENDPOINT')).toMatch(/S3 settings are incomplete/);
    });
  });

  it('refuses a file naming a server off this machine (stack:up binds loopback only)', () => {
    for (const bad of [
      { TEMPORAL_ADDRESS: 'evil.example.com:7233' },
      { CLIPEVAL_S3_ENDPOINT: 'https://evil.example.com' },
    ]) {
      const { cwd, file } = checkout(formatEnvFile({ ...STACK, ...bad }));
      withEnv({}, () => {
        expect(() => loadStackEnvDefaults(cwd)).toThrow(ConfigError);
        expect(() => loadStackEnvDefaults(cwd)).toThrow(`Refusing to read ${file}`);
        expect(process.env.TEMPORAL_ADDRESS).toBeUndefined();
      });
    }
  });

  it('refuses a file others may read or change, a symbolic link, or one owned by someone else', () => {
    const shared = checkout(formatEnvFile(STACK), 0o644); // as a git checkout or archive leaves it
    withEnv({}, () => {
      expect(() => loadStackEnvDefaults(shared.cwd)).toThrow(
        `Refusing to read ${shared.file}: its mode is 644`,
      );
      expect(() => loadStackEnvDefaults(shared.cwd)).toThrow(`chmod 600 ${shared.file}`);
      expect(process.env.TEMPORAL_ADDRESS).toBeUndefined();
    });
    const groupWritable = checkout(formatEnvFile(STACK), 0o620);
    withEnv({}, () => expect(() => loadStackEnvDefaults(groupWritable.cwd)).toThrow(/mode is 620/));

    const target = checkout(formatEnvFile(STACK));
    const linked = mkdtempSync(join(tmpdir(), 'clipeval-checkout-'));
    mkdirSync(join(linked, '.clipeval'));
    symlinkSync(target.file, join(linked, '.clipeval', 'stack.env'));
    withEnv({}, () => expect(() => loadStackEnvDefaults(linked)).toThrow(/symbolic link/));

    // Ownership: testable only where this process may give a file away (root, as in CI containers).
    if (process.getuid?.() === 0) {
      const foreign = checkout(formatEnvFile(STACK));
      chownSync(foreign.file, 65534, 65534);
      withEnv({}, () =>
        expect(() => loadStackEnvDefaults(foreign.cwd)).toThrow(/owned by uid 65534, not by you/),
      );
    }
  });

  it('reads the file stack:up wrote before quoting (plain values) the same way', () => {
    const { cwd } = checkout(
      Object.entries(STACK)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n'),
    );
    withEnv({}, () => {
      loadStackEnvDefaults(cwd);
      expect(process.env.CLIPEVAL_S3_ENDPOINT).toBe(STACK.CLIPEVAL_S3_ENDPOINT);
    });
  });
});

describe('run spec caps and uniqueness (issue 12)', () => {
  const uri = 's3://bkt/ds/';
  const invalid = (extra: Record<string, unknown>) => {
    try {
      parseRunSpec({ dataset: { uri }, ...extra });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected the spec to be refused');
  };
  const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

  it('refuses repeated shot counts and seeds (same result keys, counted twice), naming them', () => {
    const msg = invalid({ fewShot: { shots: [1, 4, 4, 8, 1], seeds: [2, 2] } });
    expect(msg).toMatch(/fewShot\.shots: 4, 1 listed more than once/);
    expect(msg).toMatch(/fewShot\.seeds: 2 listed more than once/);
  });

  it('caps shot counts, seeds and the (shots, seed) grid', () => {
    expect(invalid({ fewShot: { shots: range(17), seeds: [1] } })).toMatch(
      /fewShot\.shots: at most 16 shot counts/,
    );
    expect(invalid({ fewShot: { shots: [1], seeds: range(11) } })).toMatch(
      /fewShot\.seeds: at most 10 seeds/,
    );
    // 50 x 50 was 5,000 route activities at once.
    expect(invalid({ fewShot: { shots: range(50), seeds: range(50) } })).toMatch(
      /fewShot: at most 64 \(shots, seed\) pairs/,
    );
    expect(invalid({ fewShot: { shots: range(13), seeds: range(5) } })).toMatch(
      /at most 64 \(shots, seed\) pairs/,
    );
    const ok = parseRunSpec({ dataset: { uri }, fewShot: { shots: range(16), seeds: range(4) } });
    expect(ok.fewShot.shots).toHaveLength(16);
  });

  it('refuses a class listed twice in dataset.classes', () => {
    expect(invalid({ dataset: { uri, classes: ['cat', 'dog', 'cat'] } })).toMatch(
      /dataset\.classes: "cat" listed more than once/,
    );
  });

  it('caps coop.init at 64 words (each is at least one context vector) and needs one', () => {
    expect(invalid({ coop: { init: 'a '.repeat(65) } })).toMatch(/coop\.init: at most 64 words/);
    expect(invalid({ coop: { init: ' \t ' } })).toMatch(/coop\.init: expected "random" or/);
    expect(parseRunSpec({ dataset: { uri }, coop: { init: 'a photo of a' } }).coop.init).toBe(
      'a photo of a',
    );
  });

  it('refuses a dataset at the bucket root (planning would list the whole bucket)', () => {
    for (const root of ['s3://bkt', 's3://bkt/', 's3://bkt//']) {
      const msg = invalid({ dataset: { uri: root } });
      expect(msg).toMatch(/dataset\.uri: a dataset cannot be the bucket root/);
    }
  });

  it('takes the dataset from the spec file when --dataset is absent, and says so when neither is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-spec-'));
    writeFileSync(join(dir, 'with.yaml'), 'dataset:\n  uri: s3://bkt/pets/\n');
    writeFileSync(join(dir, 'without.yaml'), 'shardSize: 64\n');
    expect((await loadRunSpec({ file: join(dir, 'with.yaml') })).dataset.uri).toBe(
      's3://bkt/pets/',
    );
    await expect(loadRunSpec({ file: join(dir, 'without.yaml') })).rejects.toThrow(
      /No dataset: give --dataset s3:\/\/bucket\/prefix\/ .* or set dataset\.uri in the run spec .*without\.yaml/,
    );
    await expect(loadRunSpec({})).rejects.toThrow(ConfigError);
  });

  it('reads the planning limits from the environment, with defaults', () => {
    expect(loadEnv({ CLIPEVAL_BUCKET: 'abc' }).planning).toEqual({
      maxDatasetObjects: 5_000_000,
      maxClasses: 100_000,
    });
    const env = loadEnv({
      CLIPEVAL_BUCKET: 'abc',
      CLIPEVAL_MAX_DATASET_OBJECTS: '1000',
      CLIPEVAL_MAX_CLASSES: '50',
    });
    expect(env.planning).toEqual({ maxDatasetObjects: 1000, maxClasses: 50 });
    expect(() => loadEnv({ CLIPEVAL_BUCKET: 'abc', CLIPEVAL_MAX_CLASSES: '0' })).toThrow(
      /CLIPEVAL_MAX_CLASSES: expected a positive number of classes/,
    );
  });
});

describe('extraction.preprocessing and imageGraph', () => {
  it('accept the modes and graphs, refuse others; CLIPEVAL_IMAGE_GRAPH is validated', () => {
    const spec = (extraction: object) =>
      parseRunSpec({ dataset: { uri: 's3://data-bucket/photos/' }, extraction });
    expect(spec({ preprocessing: 'fast', imageGraph: 'int8' }).extraction).toMatchObject({
      preprocessing: 'fast',
      imageGraph: 'int8',
    });
    expect(spec({}).extraction.imageGraph).toBeUndefined(); // resolved at planning
    expect(() => spec({ preprocessing: 'quick' })).toThrow(/preprocessing/);
    expect(() => spec({ imageGraph: 'bf16' })).toThrow(/imageGraph/);
    expect(loadEnv({ CLIPEVAL_BUCKET: 'bkt', CLIPEVAL_IMAGE_GRAPH: 'fp16' }).imageGraph).toBe(
      'fp16',
    );
    expect(loadEnv({ CLIPEVAL_BUCKET: 'bkt' }).imageGraph).toBeUndefined();
    expect(() => loadEnv({ CLIPEVAL_BUCKET: 'bkt', CLIPEVAL_IMAGE_GRAPH: 'fp64' })).toThrow(
      /CLIPEVAL_IMAGE_GRAPH.*expected fp32, fp16 or int8/s,
    );
  });
});
