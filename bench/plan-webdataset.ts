// `npm run bench:plan-wds [-- small|large]`: planning a generated WebDataset (CLIP_benchmark's
// layout) on the local stack's S3 (versitygw), the way a run plans it (loadDataset), and what that
// costs: S3 requests by type, bytes read against the tars' total bytes, wall time, and the
// planning process's RSS (sampled every 20 ms: peak, and growth over the RSS before planning).
//  - small (default): BENCH_WDS_SAMPLES (100,000) samples of 1-2 KB random bytes with a JPEG
//    signature (planning never decodes), 1,000 a shard: headers and images are read in bulk.
//  - large: 20,000 samples of ~100 KB (2 GB of tars, 1,000 a shard of ~100 MB): RSS must stay
//    flat while the bytes go by (a tar is never held whole).
// Planning runs in a child process of its own, so the generator's buffers are not in its RSS.
// The generated objects are deleted afterwards unless BENCH_WDS_KEEP=1 (a rerun then reuses them).
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadEnv } from '../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../core/config/run-spec';
import { loadDataset } from '../core/dataset/load';
import { ObjectStore } from '../core/storage/object-store';
import { forEachLimited } from '../core/util/concurrency';
import { stackUp } from '../infra/local-stack/stack';
import { packTar, sampleFiles } from '../test/helpers/wds-tars';
import { benchHeader, markdownTable, num } from './stats';

const MODE = process.argv[2] === 'large' ? 'large' : 'small';
const N = Number(process.env.BENCH_WDS_SAMPLES ?? (MODE === 'large' ? 20_000 : 100_000));
/** Image bytes: uniform in [min, max]. */
const [MIN_BYTES, MAX_BYTES] = MODE === 'large' ? [95_000, 105_000] : [1_000, 2_000];
const PER_SHARD = Number(process.env.BENCH_WDS_PER_SHARD ?? 1000);
const CLASSES = 1000;
const PREFIX = `bench/wds-${MODE}-${N}x${PER_SHARD}/`;
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff, 0xe0];

/** What the planning child prints (one JSON line, last). */
interface PlanFigures {
  samples: number;
  skipped: number;
  tars: number;
  tarBytes: number;
  requests: Record<string, number>;
  /** Bytes of the tars read. */
  bytesRead: number;
  wallS: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
}

/** Uploads the dataset unless it is already there (its classnames.txt is written last). */
async function generate(store: ObjectStore): Promise<void> {
  if (await store.exists(`${PREFIX}classnames.txt`)) return;
  const shards = Math.ceil(N / PER_SHARD);
  console.error(`generating ${N} samples in ${shards} shards under ${store.uri(PREFIX)} ...`);
  let done = 0;
  await forEachLimited(shards, 2, async (s) => {
    const count = Math.min(PER_SHARD, N - s * PER_SHARD);
    const samples = Array.from({ length: count }, (_, j) => {
      const i = s * PER_SHARD + j;
      const image = randomBytes(randomInt(MIN_BYTES, MAX_BYTES + 1));
      image.set(JPEG_SIGNATURE);
      return { key: `s${String(i).padStart(7, '0')}`, image, cls: `${i % CLASSES}\n` };
    });
    await store.putBytes(`${PREFIX}train/${s}.tar`, await packTar(sampleFiles(samples)));
    if (++done % 10 === 0) console.error(`  ${done}/${shards} shards`);
  });
  await store.putBytes(`${PREFIX}train/nshards.txt`, `${shards}\n`);
  const names = Array.from({ length: CLASSES }, (_, c) => `class ${c}`).join('\n');
  await store.putBytes(`${PREFIX}classnames.txt`, `${names}\n`);
}

/** The child: plans the dataset once, counting every HTTP request the S3 client sends. */
async function planOnce(): Promise<PlanFigures> {
  const env = loadEnv();
  const store = ObjectStore.connect(env.s3);
  const requests: Record<string, number> = {};
  let bytesRead = 0;
  // At the deserialize step: once per HTTP attempt (retries included), with the response.
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName ?? '?').replace(/Command$/, '');
      const key = (args.input as { Key?: string }).Key ?? '';
      const op =
        command === 'GetObject'
          ? `GetObject ${key.endsWith('.tar') ? '(tars)' : '(text files)'}`
          : command;
      requests[op] = (requests[op] ?? 0) + 1;
      const result = await next(args);
      if (op === 'GetObject (tars)') bytesRead += contentLength(result);
      return result;
    },
    { step: 'deserialize', name: 'benchCountRequests' },
  );
  const spec = parseRunSpec({ dataset: { uri: store.uri(PREFIX) }, ...EXTRACTION_ONLY });
  await sleep(100);
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  let tars = 0;
  const loaded = await loadDataset(store, spec.dataset, {
    onProgress: (p) => (tars = p.containers ?? tars),
  });
  const wallS = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  const listing = await store.list(`${PREFIX}train/`);
  store.client.destroy();
  return {
    samples: loaded.items.length,
    skipped: loaded.skipped.length,
    tars,
    tarBytes: listing.filter((o) => o.key.endsWith('.tar')).reduce((a, o) => a + o.size, 0),
    requests: Object.fromEntries(
      Object.entries(requests).map(([op, n]) => [op, op === 'ListObjectsV2' ? n - 1 : n]),
    ), // less the bench's own listing of the tars' sizes, made after planning
    bytesRead,
    wallS,
    rssBeforeMiB: rssBefore / 2 ** 20,
    rssPeakMiB: rssPeak / 2 ** 20,
  };
}

/** The response's Content-Length, whether the middleware sits before or after deserializing. */
function contentLength(result: { output?: unknown; response?: unknown }): number {
  const output = result.output as { ContentLength?: number } | undefined;
  const headers = (result.response as { headers?: Record<string, string> } | undefined)?.headers;
  return output?.ContentLength ?? Number(headers?.['content-length'] ?? 0);
}

async function main(): Promise<void> {
  if (process.env.BENCH_WDS_CHILD === '1') {
    console.log(JSON.stringify(await planOnce()));
    return;
  }
  const stack = await stackUp();
  Object.assign(process.env, stack.env);
  const store = ObjectStore.connect(loadEnv().s3);
  await store.ensureBucket();
  await generate(store);
  const child = spawnSync(process.execPath, ['--import', 'tsx', __filename, MODE], {
    env: { ...process.env, BENCH_WDS_CHILD: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`the planning process failed (${child.status})`);
  const f = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as PlanFigures;
  const requests = Object.entries(f.requests)
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
  console.log(
    benchHeader(`Planning a WebDataset (${MODE}): ${N} samples`, [
      `${f.tars} tars of ${PER_SHARD} samples, images ${MIN_BYTES}-${MAX_BYTES} bytes, ${CLASSES} classes; local stack S3 (versitygw)`,
      'one planning (loadDataset) in a fresh process: a single measurement, not a median',
    ]),
  );
  console.log(
    markdownTable(
      [
        'samples',
        'skipped',
        'S3 requests',
        'tar bytes read / tar bytes',
        'wall s',
        'RSS before MiB',
        'peak RSS MiB',
        'RSS growth MiB',
      ],
      [
        [
          String(f.samples),
          String(f.skipped),
          requests,
          `${num(f.bytesRead / 2 ** 20)} MiB / ${num(f.tarBytes / 2 ** 20)} MiB (${num((100 * f.bytesRead) / f.tarBytes)}%)`,
          num(f.wallS, 2),
          num(f.rssBeforeMiB, 0),
          num(f.rssPeakMiB, 0),
          num(f.rssPeakMiB - f.rssBeforeMiB, 0),
        ],
      ],
    ),
  );
  if (process.env.BENCH_WDS_KEEP !== '1') {
    const objects = await store.list(PREFIX);
    await forEachLimited(objects.length, 8, (i) => store.delete(objects[i]!.key));
    console.error(`deleted the ${objects.length} generated objects (BENCH_WDS_KEEP=1 keeps them)`);
  }
  store.client.destroy();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
