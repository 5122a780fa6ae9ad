/**
 * @file `clipeval model|tokenize|embed`: the model layer from the command line, for debugging
 * and scripts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { type ModelBundle, resolveBundle, uploadBundle } from '../core/model/bundle';
import { ImageEncoder, ClipTextEncoder } from '../core/model/onnx/encoders';
import { preprocessImage, preprocessParams } from '../core/model/image/preprocess';
import type { ExecutionProvider } from '../core/model/onnx/session-thread';
import { tokenizerForBundle } from '../core/model/text/tokenizer';
import { ObjectStore } from '../core/storage/object-store';
import { isS3Uri } from '../core/storage/s3-uri';
import { UsageError } from '../client/errors';
import { withExitCode } from './exit-code';

/** Model settings from the environment; these commands need no output bucket. */
const modelEnv = () => loadEnv({ CLIPEVAL_BUCKET: 'unused', ...process.env });

/** S3 as the environment configures it; these commands name their objects by s3:// URI. */
function storeFromEnv(): ObjectStore {
  loadStackEnvDefaults();
  const env = modelEnv();
  return ObjectStore.connect(env.s3);
}

async function openBundle(ref: string): Promise<ModelBundle> {
  return resolveBundle(ref, { store: storeFromEnv(), cacheDir: modelEnv().bundleCache });
}

/** --providers overrides CLIPEVAL_EXECUTION_PROVIDERS. */
function encoderOptions(providers?: string) {
  const onnx = modelEnv().onnx;
  if (providers !== undefined && !/^(cuda|webgpu|cpu)(,(cuda|webgpu|cpu))*$/.test(providers)) {
    throw new UsageError(
      `--providers ${providers}: expected a comma-separated list of cuda, webgpu, cpu`,
    );
  }
  return {
    providers: providers ? (providers.split(',') as ExecutionProvider[]) : onnx.providers,
    threads: onnx.threads,
  };
}

async function readSource(source: string): Promise<Uint8Array> {
  if (!isS3Uri(source)) return readFile(source);
  const { store, key } = storeFromEnv().at(source);
  return store.requireBytes(key);
}

const round = (v: Float32Array, dim: number) =>
  Array.from({ length: v.length / dim }, (_, i) =>
    Array.from(v.subarray(i * dim, (i + 1) * dim), (x) => Number(x.toFixed(7))),
  );

/** The project root (where .venv and infra/ live), from source or from dist/. */
function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export function addModelCommands(program: Command): void {
  const model = program.command('model').description('export, upload and inspect model bundles');
  model
    .command('export')
    .description(
      'run the exporter (infra/exporter/export.py) in the project venv; arguments pass through',
    )
    .allowUnknownOption()
    .argument(
      '[args...]',
      'e.g. --random-init tiny --seed 0 --out bundles/tiny, --checkpoint HF_DIR --out DIR, ' +
        'or --open-clip MODEL --checkpoint FILE --out DIR',
    )
    .action(
      withExitCode((args: string[]) => {
        const root = projectRoot();
        const python = join(root, '.venv', 'bin', 'python');
        if (!existsSync(python))
          throw new UsageError(
            `No exporter environment at ${python}: run bash infra/exporter/setup.sh`,
          );
        const r = spawnSync(python, [join(root, 'infra', 'exporter', 'export.py'), ...args], {
          stdio: 'inherit',
        });
        return Promise.resolve(r.status ?? 1);
      }),
    );
  model
    .command('upload')
    .description('verify a local bundle and upload it to an s3:// prefix')
    .argument('<dir>')
    .argument('<uri>')
    .action(
      withExitCode(async (dir: string, uri: string) => {
        if (!isS3Uri(uri))
          throw new UsageError(`"${uri}" is not an S3 URI: expected s3://bucket/prefix`);
        const b = await uploadBundle(storeFromEnv(), dir, uri);
        console.log(`uploaded ${b.manifest.name} (bundle ${b.hash.slice(0, 16)}) to ${uri}`);
        return 0;
      }),
    );

  program
    .command('tokenize')
    .description('token ids of texts, as the text encoder sees them')
    .requiredOption('--bundle <dir|s3://>', 'model bundle')
    .option('--json', 'machine-readable output')
    .argument('<texts...>')
    .action(
      withExitCode(async (texts: string[], opts: { bundle: string; json?: boolean }) => {
        const tok = await tokenizerForBundle(await openBundle(opts.bundle));
        const ids = texts.map((t) => tok.encode(t));
        if (opts.json) console.log(JSON.stringify(texts.map((text, i) => ({ text, ids: ids[i] }))));
        else texts.forEach((t, i) => console.log(`${JSON.stringify(t)}: ${ids[i]!.join(' ')}`));
        return 0;
      }),
    );

  const embed = program.command('embed').description('L2-normalised embeddings of texts or images');
  embed
    .command('text')
    .requiredOption('--bundle <dir|s3://>', 'model bundle')
    .option('--providers <list>', 'execution providers in order, e.g. webgpu,cpu')
    .option('--json', 'machine-readable output')
    .argument('<texts...>')
    .action(
      withExitCode(
        async (texts: string[], opts: { bundle: string; providers?: string; json?: boolean }) => {
          const bundle = await openBundle(opts.bundle);
          const batch = (await tokenizerForBundle(bundle)).encodeBatch(texts);
          const enc = await ClipTextEncoder.create(bundle, encoderOptions(opts.providers));
          try {
            const rows = round(
              await enc.encode(batch.ids, batch.shape),
              bundle.manifest.architecture.embedDim,
            );
            const out = texts.map((text, i) => ({ text, embedding: rows[i] }));
            console.log(
              opts.json
                ? JSON.stringify(out)
                : out
                    .map((o) => `${JSON.stringify(o.text)}: [${o.embedding!.join(', ')}]`)
                    .join('\n'),
            );
          } finally {
            await enc.close();
          }
          return 0;
        },
      ),
    );
  embed
    .command('image')
    .requiredOption('--bundle <dir|s3://>', 'model bundle')
    .option('--providers <list>', 'execution providers in order, e.g. webgpu,cpu')
    .option('--json', 'machine-readable output')
    .argument('<files...>', 'local paths or s3:// URIs')
    .action(
      withExitCode(
        async (files: string[], opts: { bundle: string; providers?: string; json?: boolean }) => {
          const bundle = await openBundle(opts.bundle);
          const p = bundle.manifest.preprocessing;
          const params = preprocessParams(p);
          const size = 3 * p.imageSize * p.imageSize;
          const pixels = new Float32Array(files.length * size);
          for (const [i, f] of files.entries())
            pixels.set(await preprocessImage(await readSource(f), params), i * size);
          // Normalised float pixels: the reference float graph (the uint8 one gives the same vectors).
          const enc = await ImageEncoder.create(bundle, {
            ...encoderOptions(opts.providers),
            inputFormat: 'float32-nchw',
          });
          try {
            const rows = round(
              await enc.encode(pixels, files.length),
              bundle.manifest.architecture.embedDim,
            );
            const out = files.map((file, i) => ({ file, embedding: rows[i] }));
            console.log(
              opts.json
                ? JSON.stringify(out)
                : out.map((o) => `${o.file}: [${o.embedding!.join(', ')}]`).join('\n'),
            );
          } finally {
            await enc.close();
          }
          return 0;
        },
      ),
    );
}
