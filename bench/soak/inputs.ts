/**
 * @file The soak's inputs, written the same into each bucket it uses (the baseline's and the
 * chaos run's): four datasets in three formats (ImageFolder, CLIP_benchmark WebDataset, Hugging
 * Face Parquet, written by the field's own Python tools), two tiny models, and the run specs and
 * 2x2 suite spec over them. Byte-identical inputs are what make the metrics comparable.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { ClipevalEnv } from '../../core/config/env';
import { type RunSpec, type RunSpecInput, parseRunSpec } from '../../core/config/run-spec';
import { type SuiteSpec, parseSuiteSpec } from '../../core/config/suite-spec';
import { syntheticDataset } from '../../core/dataset/synthetic';
import { runPythonJson } from '../../test/helpers/python';
import { putObjects, uploadRenamedTinyBundle, uploadTinyBundle } from '../../test/helpers/stack';

export type SoakSize = 'small' | 'full';

type Format = 'folder' | 'wds' | 'parquet';

/** Per size: images per class and split, image side, and the run spec's work. */
const SIZES = {
  small: {
    perSplit: { train: 4, val: 0, test: 3 },
    side: 64,
    run: {
      shardSize: 4,
      coop: { epochs: 4, nCtx: 2, heartbeatTimeoutSeconds: 5 },
      fewShot: { shots: [2], seeds: [1] },
    },
  },
  full: {
    perSplit: { train: 10, val: 0, test: 6 },
    side: 160,
    run: {
      shardSize: 6,
      coop: { epochs: 30, nCtx: 4, heartbeatTimeoutSeconds: 5 },
      fewShot: { shots: [2, 4], seeds: [1, 2] },
    },
  },
} satisfies Record<SoakSize, unknown>;

// A dead gpu worker is noticed after the heartbeat timeout: short, so a kill costs seconds.
const EXTRACTION = { batchSize: 2, concurrency: 1, parallelism: 2, heartbeatTimeoutSeconds: 4 };

const DATASETS: { name: string; format: Format; seed: number }[] = [
  { name: 'shapes-folder', format: 'folder', seed: 11 },
  { name: 'shapes-wds', format: 'wds', seed: 12 },
  { name: 'shapes-parquet', format: 'parquet', seed: 13 },
  { name: 'shapes-folder2', format: 'folder', seed: 14 },
];

export interface SoakInputs {
  runs: { name: string; format: Format; spec: RunSpec }[];
  suite: SuiteSpec;
}

const WRITE_FORMATS = readFileSync(
  join(__dirname, '..', '..', 'test', 'helpers', 'write_formats.py'),
  'utf8',
);

function filesUnder(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p);
    }
  };
  walk(dir);
  return out;
}

/** One dataset's files in its format, relative to its prefix. */
async function datasetFiles(
  format: Format,
  seed: number,
  size: SoakSize,
): Promise<Record<string, Buffer>> {
  const { perSplit, side } = SIZES[size];
  const images = await syntheticDataset({ perSplit, seed, size: side });
  if (format === 'folder') return Object.fromEntries(images.map((i) => [i.path, i.body]));
  const dir = mkdtempSync(join(tmpdir(), 'clipeval-soak-'));
  try {
    for (const i of images) {
      mkdirSync(dirname(join(dir, 'folder', i.path)), { recursive: true });
      writeFileSync(join(dir, 'folder', i.path), i.body);
    }
    runPythonJson(WRITE_FORMATS, {
      root: join(dir, 'folder'),
      out: dir,
      maxcount: 4,
      rowGroupSize: 3,
      filesPerSplit: 2,
      templates: ['a photo of a {c}.', 'a drawing of a {c}.'],
    });
    return filesUnder(join(dir, format));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Generates the datasets once (deterministic from their seeds). */
export async function soakDatasetFiles(size: SoakSize) {
  return Promise.all(
    DATASETS.map(async (d) => ({ ...d, files: await datasetFiles(d.format, d.seed, size) })),
  );
}

/** Uploads the datasets and models into `env`'s bucket (directly) and returns the specs. */
export async function uploadSoakInputs(
  env: ClipevalEnv,
  size: SoakSize,
  datasets: Awaited<ReturnType<typeof soakDatasetFiles>>,
): Promise<SoakInputs> {
  const bucket = env.s3.bucket;
  const uris: string[] = [];
  for (const d of datasets) {
    await putObjects(env, bucket, `soak-data/${d.name}/`, d.files);
    uris.push(`s3://${bucket}/soak-data/${d.name}/`);
  }
  const models = [
    { name: 'tiny-a', bundle: await uploadTinyBundle(env) },
    { name: 'tiny-b', bundle: await uploadRenamedTinyBundle(env, 'soak-tiny-b') },
  ];
  const run: Partial<RunSpecInput> = { ...SIZES[size].run, extraction: EXTRACTION };
  const runs = DATASETS.map((d, i) => ({
    name: d.name,
    format: d.format,
    // Each run on its own model or dataset, so four runs do four extractions at once.
    spec: parseRunSpec({
      dataset: { uri: uris[i]! },
      model: { bundle: models[0]!.bundle },
      ...run,
    }),
  }));
  const suite = parseSuiteSpec({
    models,
    datasets: [
      { name: DATASETS[1]!.name, uri: uris[1]! },
      { name: DATASETS[3]!.name, uri: uris[3]! },
    ],
    concurrency: 2,
    run,
  });
  return { runs, suite };
}
