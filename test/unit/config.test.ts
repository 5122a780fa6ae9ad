import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/config/errors';
import { loadEnv, parseEnvFile, temporalTls } from '../../core/config/env';
import { loadRunSpec, parseRunSpec } from '../../core/config/run-spec';

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

describe('Temporal TLS', () => {
  const base = { CLIPEVAL_BUCKET: 'abc' };
  it('is off by default, on with TEMPORAL_TLS or an API key', () => {
    expect(temporalTls(loadEnv(base).temporal)).toBe(false);
    expect(temporalTls(loadEnv({ ...base, TEMPORAL_TLS: 'true' }).temporal)).toBe(true);
    expect(temporalTls(loadEnv({ ...base, TEMPORAL_API_KEY: 'k' }).temporal)).toBe(true);
  });
  it('reads the mTLS certificate pair, CA and server name from PEM files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-tls-'));
    for (const f of ['c.pem', 'k.pem', 'ca.pem']) writeFileSync(join(dir, f), `-----${f}-----`);
    const env = loadEnv({
      ...base,
      TEMPORAL_TLS_CERT: join(dir, 'c.pem'),
      TEMPORAL_TLS_KEY: join(dir, 'k.pem'),
      TEMPORAL_TLS_CA: join(dir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(env.temporal.tls).toBe(true);
    const tls = temporalTls(env.temporal) as Exclude<ReturnType<typeof temporalTls>, boolean>;
    expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe('-----c.pem-----');
    expect(Buffer.from(tls.clientCertPair!.key).toString()).toBe('-----k.pem-----');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toBe('-----ca.pem-----');
    expect(tls.serverNameOverride).toBe('temporal.internal');
  });
  it('refuses a certificate without its key, and names an unreadable file', () => {
    expect(() => loadEnv({ ...base, TEMPORAL_TLS_CERT: '/x.pem' })).toThrow(
      /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together/,
    );
    const env = loadEnv({ ...base, TEMPORAL_TLS_CA: '/nonexistent/ca.pem' });
    expect(() => temporalTls(env.temporal)).toThrow(
      /Cannot read TEMPORAL_TLS_CA=\/nonexistent\/ca.pem/,
    );
  });
});

describe('run spec', () => {
  it('fills defaults', () => {
    const spec = parseRunSpec({ dataset: { uri: 's3://bkt/data/' } });
    expect(spec).toEqual({
      dataset: {
        uri: 's3://bkt/data/',
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
      },
      classNames: {},
      zeroShot: { enabled: true, templates: 'default' },
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
      fewShot: { shots: [16], seeds: [1] },
      regression: { maxDrop: 0.02, metric: 'acc1' },
    });
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
