// bench/embed.ts's clipeval side, one process per row (pinned by the parent): the bundle's image
// graph of one variant in ImageEncoder (ONNX Runtime on a session thread, `threads` intra-op
// threads) over the same pre-made pixel batch as the reference. Prints one JSON line: images/s
// per timed repeat; writes the batch's embeddings to `out` for the cross-side cosine check.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadBundle } from '../core/model/bundle';
import { type EncoderOptions, ImageEncoder } from '../core/model/onnx/encoders';
import { repeat } from './stats';

export interface EmbedChildArgs {
  bundle: string;
  /** The graph variant: one row per variant the bundle has. */
  precision: NonNullable<EncoderOptions['precision']>;
  /** float32-nchw: the reference float graph; uint8-nhwc: the variant taking crop bytes. */
  inputFormat: NonNullable<EncoderOptions['inputFormat']>;
  threads: number;
  batch: number;
  /** [batch, 3, S, S] float32 (little-endian) or [batch, S, S, 3] uint8, as inputFormat says. */
  pixels: string;
  /** Batches per timed repeat. */
  iters: number;
  repeats: number;
  out: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as EmbedChildArgs;
  const bundle = await loadBundle(a.bundle);
  const file = readFileSync(a.pixels);
  const pixels =
    a.inputFormat === 'uint8-nhwc'
      ? new Uint8Array(file.buffer, file.byteOffset, file.byteLength)
      : new Float32Array(file.buffer, file.byteOffset, file.byteLength / 4);
  const encoder = await ImageEncoder.create(bundle, {
    threads: a.threads,
    providers: ['cpu'],
    precision: a.precision,
    inputFormat: a.inputFormat,
  });
  try {
    writeFileSync(a.out, await encoder.encode(pixels.slice(), a.batch));
    const once = async () => {
      // The buffers are moved to the session thread; copies made before the clock starts.
      const inputs = Array.from({ length: a.iters }, () => pixels.slice());
      const start = performance.now();
      for (const input of inputs) await encoder.encode(input, a.batch);
      return (a.iters * a.batch) / ((performance.now() - start) / 1000);
    };
    console.log(JSON.stringify({ ips: await repeat(once, a.repeats) }));
  } finally {
    await encoder.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
