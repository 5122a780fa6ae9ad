// The ImageNet-1k shaped WebDataset of bench/scale.ts: `train` and `test` splits of tiny real
// JPEGs (16x16, one encoded per class by sharp and reused by byte copy under each sample's own
// key, so generating 1.28 M samples costs tar packing and upload, not encoding), 1,000 classes
// with ImageNet's names, in CLIP_benchmark's layout (<split>/<i>.tar, <split>/nshards.txt,
// classnames.txt written last as the "complete" mark, so a rerun reuses a finished upload).
import sharp from 'sharp';
import { benchmarkClassNames } from '../../core/dataset/benchmark-class-names';
import type { ObjectStore } from '../../core/storage/object-store';
import { forEachLimited } from '../../core/util/concurrency';
import { packTar, sampleFiles } from '../../test/helpers/wds-tars';

export const CLASSES = 1000;
/** ImageNet-1k's train and validation sizes: a curve point of N train images has N x this test. */
export const IMAGENET_TRAIN = 1_281_167;
export const IMAGENET_TEST = 50_000;
const PER_TAR = 1000;

export interface ScaleDataset {
  prefix: string;
  train: number;
  test: number;
  tars: number;
  tarBytes: number;
  /** Seconds to generate and upload; 0 when an earlier upload was reused. */
  generateS: number;
}

export function testSizeFor(train: number): number {
  return Math.max(CLASSES, Math.round((train * IMAGENET_TEST) / IMAGENET_TRAIN));
}

/** One 16x16 JPEG per class: a flat colour that differs by class (real, decodable bytes). */
async function classJpegs(): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: CLASSES }, (_, c) =>
      sharp({
        create: {
          width: 16,
          height: 16,
          channels: 3,
          background: { r: c % 256, g: (c * 7) % 256, b: (c * 13) % 256 },
        },
      })
        .jpeg({ quality: 90 })
        .toBuffer(),
    ),
  );
}

/**
 * ImageNet's names, made distinct: CLIP_benchmark's list names two classes "missile" and two
 * "sunglasses" (the synsets differ), which planning rightly refuses; the second gets its index.
 */
function distinctNames(labels: readonly string[]): string[] {
  const seen = new Set<string>();
  return benchmarkClassNames('imagenet1k', labels, 'given').map((name, c) => {
    const distinct = seen.has(name) ? `${name} (${c})` : name;
    seen.add(distinct);
    return distinct;
  });
}

/** Uploads the dataset of `train` + testSizeFor(train) samples unless it is already there. */
export async function ensureScaleDataset(store: ObjectStore, train: number): Promise<ScaleDataset> {
  const test = testSizeFor(train);
  const prefix = `bench/scale/imagenet1k-${train}/`;
  const splits = [
    { name: 'train', n: train },
    { name: 'test', n: test },
  ];
  const t0 = performance.now();
  const reused = await store.exists(`${prefix}classnames.txt`);
  if (!reused) {
    const jpegs = await classJpegs();
    for (const { name, n } of splits) {
      const tars = Math.ceil(n / PER_TAR);
      console.error(`generating ${name}: ${n} samples in ${tars} tars under ${prefix} ...`);
      await forEachLimited(tars, 2, async (t) => {
        const count = Math.min(PER_TAR, n - t * PER_TAR);
        const samples = Array.from({ length: count }, (_, j) => {
          const i = t * PER_TAR + j;
          const cls = (i * 7919) % CLASSES; // classes interleaved across tars, as shuffled shards are
          const key = `${name}_${String(i).padStart(8, '0')}`;
          return { key, image: jpegs[cls]!, cls: `${cls}\n` };
        });
        await store.putBytes(`${prefix}${name}/${t}.tar`, await packTar(sampleFiles(samples)));
      });
      await store.putBytes(`${prefix}${name}/nshards.txt`, `${tars}\n`);
    }
    const labels = Array.from({ length: CLASSES }, (_, c) => String(c));
    await store.putBytes(`${prefix}classnames.txt`, `${distinctNames(labels).join('\n')}\n`);
  }
  const listing = await store.list(prefix);
  const tars = listing.filter((o) => o.key.endsWith('.tar'));
  return {
    prefix,
    train,
    test,
    tars: tars.length,
    tarBytes: tars.reduce((a, o) => a + o.size, 0),
    generateS: reused ? 0 : (performance.now() - t0) / 1000,
  };
}
