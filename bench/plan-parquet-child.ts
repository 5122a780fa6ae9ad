// bench/plan-parquet.ts's measuring side, in a process of its own so its peak RSS is this size's
// alone: plans the Parquet dataset at argv's prefix, then reads every planned row through
// parquetPartReader shard by shard (plan.json's shards; each shard's reads 8 at a time, as
// extraction's concurrency does), keeping nothing. Counts every S3 request and the bytes of every
// GET by wrapping the one S3 client ObjectStore uses. Prints one JSON line.
import type { S3Client } from '@aws-sdk/client-s3';
import { loadEnv } from '../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../core/config/run-spec';
import { loadDataset } from '../core/dataset/load';
import { parquetPartReader } from '../core/dataset/parquet/read-parquet';
import { buildPlan } from '../core/dataset/plan';
import { ObjectStore } from '../core/storage/object-store';
import { createS3Client } from '../core/storage/s3-client';
import { forEachLimited } from '../core/util/concurrency';

interface Counts {
  requests: number;
  gets: number;
  bytes: number;
}

const { uri, shardSize } = JSON.parse(process.argv[2]!) as { uri: string; shardSize: number };

async function main(): Promise<void> {
  const env = loadEnv();
  const inner = createS3Client(env.s3);
  let counts: Counts = { requests: 0, gets: 0, bytes: 0 };
  const counting = {
    async send(command: { constructor: { name: string } }, opts?: unknown) {
      const r = (await (inner.send as (c: unknown, o?: unknown) => Promise<unknown>)(
        command,
        opts,
      )) as { ContentLength?: number };
      counts.requests++;
      if (command.constructor.name === 'GetObjectCommand') {
        counts.gets++;
        counts.bytes += r.ContentLength ?? 0;
      }
      return r;
    },
  } as unknown as S3Client;
  const store = new ObjectStore(counting, env.s3.bucket);

  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 20);

  const spec = parseRunSpec({ dataset: { uri }, shardSize, ...EXTRACTION_ONLY });
  let t = performance.now();
  const loaded = await loadDataset(store, spec.dataset);
  const plan = buildPlan({ runId: 'bench', spec, ...loaded });
  const planning = { ...counts, ms: performance.now() - t, rows: plan.counts.total };
  const planRss = peakRss;

  counts = { requests: 0, gets: 0, bytes: 0 };
  t = performance.now();
  let images = 0;
  let imageBytes = 0;
  for (const shard of plan.shards) {
    const reader = parquetPartReader(store, shard.items);
    await forEachLimited(shard.items.length, 8, async (i) => {
      const bytes = await reader.read(shard.items[i]!);
      images++;
      imageBytes += bytes.length;
    });
  }
  const reading = {
    ...counts,
    ms: performance.now() - t,
    images,
    imageBytes,
    shards: plan.shards.length,
  };
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  console.log(
    JSON.stringify({
      planning,
      reading,
      planRssMiB: planRss / 2 ** 20,
      peakRssMiB: peakRss / 2 ** 20,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
