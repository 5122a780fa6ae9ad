// `npm run bench:plan-parquet`: planning and reading a Parquet dataset (Hugging Face's layout) as
// it grows, on the local stack's S3 (versitygw). For each total size in BENCH_PARQUET_MB (default
// 200,500,1000,2000 MB of random "image" bytes, BENCH_PARQUET_IMAGE_KB per image (100), 100 rows
// per row group, BENCH_PARQUET_FILE_MB per file (200)), bench/parquet_gen.py writes the files
// straight to S3; then bench/plan-parquet-child.ts, in a fresh process, plans them and reads every
// row through parquetPartReader shard by shard, and reports S3 requests, bytes read, wall time and
// peak RSS. The claim checked: RSS stays flat as the files grow (memory is bounded by the row
// groups in flight, not by the file or the dataset). The generated objects are deleted after each
// size. One run per size (a memory profile, not a timing to compare).
import { availableParallelism, cpus } from 'node:os';
import { loadEnv } from '../core/config/env';
import { ObjectStore } from '../core/storage/object-store';
import { forEachLimited } from '../core/util/concurrency';
import { stackUp } from '../infra/local-stack/stack';
import { runNode, runPython } from './child';
import { markdownTable, num } from './stats';

const SIZES_MB = (process.env.BENCH_PARQUET_MB ?? '200,500,1000,2000').split(',').map(Number);
const IMAGE_KB = Number(process.env.BENCH_PARQUET_IMAGE_KB ?? 100);
const FILE_MB = Number(process.env.BENCH_PARQUET_FILE_MB ?? 200);
const ROWS_PER_GROUP = 100;
const SHARD_SIZE = 1024;

interface Measured {
  planning: { requests: number; gets: number; bytes: number; ms: number; rows: number };
  reading: {
    requests: number;
    gets: number;
    bytes: number;
    ms: number;
    images: number;
    imageBytes: number;
    shards: number;
  };
  planRssMiB: number;
  peakRssMiB: number;
  maxRssMiB: number;
}

const MiB = 2 ** 20;

async function main(): Promise<void> {
  const stack = await stackUp();
  Object.assign(process.env, stack.env);
  const env = loadEnv();
  const store = ObjectStore.connect(env.s3);
  await store.ensureBucket();
  const rows: string[][] = [];
  for (const mb of SIZES_MB) {
    const prefix = `bench/parquet-${mb}mb-${Date.now().toString(36)}/`;
    try {
      console.error(`${mb} MB: writing ...`);
      const gen = runPython<{ files: number; rows: number; row_groups: number; bytes: number }>(
        'parquet_gen.py',
        {
          endpoint: env.s3.endpoint,
          bucket: env.s3.bucket,
          prefix,
          total_mb: mb,
          file_mb: FILE_MB,
          image_kb: IMAGE_KB,
          rows_per_group: ROWS_PER_GROUP,
          classes: 10,
          seed: mb,
        },
        { cores: 1 },
      );
      console.error(`${mb} MB: planning and reading ${gen.rows} rows in ${gen.files} files ...`);
      const m = runNode<Measured>(
        'plan-parquet-child.ts',
        { uri: store.uri(prefix), shardSize: SHARD_SIZE },
        { cores: 1 },
      );
      if (m.planning.rows !== gen.rows || m.reading.images !== gen.rows)
        throw new Error(
          `planned ${m.planning.rows} and read ${m.reading.images} of ${gen.rows} rows`,
        );
      rows.push([
        `${num(gen.bytes / MiB, 0)} MiB, ${gen.files} file(s)`,
        String(gen.rows),
        `${m.planning.requests} (${gen.row_groups} row groups)`,
        `${num(m.planning.bytes / MiB, 2)} MiB`,
        num(m.planning.ms / 1000, 2),
        `${m.reading.requests} (${m.reading.shards} shards)`,
        `${num(m.reading.bytes / MiB, 0)} MiB (images ${num(m.reading.imageBytes / MiB, 0)})`,
        num(m.reading.ms / 1000, 1),
        num(m.planRssMiB, 0),
        num(m.peakRssMiB, 0),
      ]);
    } finally {
      const objects = await store.list(prefix);
      await forEachLimited(objects.length, 8, (i) => store.delete(objects[i]!.key));
    }
  }
  console.log(
    [
      '### Parquet: planning and reading every row as the dataset grows (local versitygw)',
      '',
      `- date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${availableParallelism()} cores available, ${cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}`,
      `- random bytes as images, ${IMAGE_KB} KiB each, ${ROWS_PER_GROUP} rows per row group, files of up to ${FILE_MB} MB, snappy (as Hugging Face writes)`,
      `- reading: plan.json's shards of ${SHARD_SIZE}, each through parquetPartReader, 8 reads in flight`,
      '- one run per size, each in a fresh process (a memory profile, not a timing to compare); requests include the listing',
      '',
    ].join('\n'),
  );
  console.log(
    markdownTable(
      [
        'data',
        'rows',
        'plan requests',
        'plan bytes',
        'plan s',
        'read requests',
        'read bytes',
        'read s',
        'RSS after plan (MiB)',
        'peak RSS (MiB)',
      ],
      rows,
    ),
  );
  store.client.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
