/**
 * @file THE REFERENCE for test/unit/resample.test.ts: core/model/image/resample.ts as it was before
 * it was optimised (commit 3a52526), kept unchanged: the straightforward port, one output sample at
 * a time with Pillow's own windows. The optimised resampler must equal it byte for byte.
 *
 * Pillow's bicubic resize for 8-bit images (`src/libImaging/Resample.c`, Pillow 13),
 * reproduced bit for bit, fused with a crop: only the output window that survives the crop is
 * computed.
 *
 * Pillow resamples in two separable passes, horizontal first, with an intermediate image rounded
 * to 8 bits. For each output sample it centres a filter on the source (support grown by the
 * scale factor when shrinking, which is what antialiases), normalises the weights to sum to 1,
 * turns them into 22-bit fixed point, sums with a rounding offset and clips. Every output sample
 * depends only on its own coefficients, so computing a window gives exactly the same values as
 * resizing everything and cropping afterwards.
 */
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

/** Keys' cubic convolution with a = -0.5, as Pillow's `bicubic_filter`; support 2. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  /** Per output sample: first source index and tap count. */
  first: Int32Array;
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output sample. */
  k: Int32Array;
  ksize: number;
}

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for output samples
 * [from, from + n) of an inSize -> outSize resize. Same operations in the same order, in
 * doubles like the C code, so the weights are identical.
 */
function coeffs(inSize: number, outSize: number, from: number, n: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterscale;
  const first = new Int32Array(n);
  const count = new Int32Array(n);
  const k = new Int32Array(n * ksize);
  const w = new Float64Array(ksize);
  for (let i = 0; i < n; i++) {
    const center = (from + i + 0.5) * scale;
    // (int) casts truncate towards zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[i * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * ONE : 0.5 + v * ONE);
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { first, count, k, ksize };
}

/**
 * Pillow's `clip8`: drop the fraction bits (arithmetic shift), clamp to 0..255. Sums stay in
 * int32 as in C (|weights| sum to well under 2 and pixels are < 2^8, so < 2^31).
 */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes an RGB (HWC, 8-bit) image to outW x outH with Pillow's BICUBIC filter and returns the
 * `crop` window of the result (x, y, width, height in output pixels), as HWC RGB. Equal to
 * `Image.resize((outW, outH), BICUBIC).crop(...)` without computing the discarded pixels.
 */
export function referenceResizeCropBicubic(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  outW: number,
  outH: number,
  crop: { x: number; y: number; width: number; height: number },
): Uint8Array {
  const { x: cx, y: cy, width: cw, height: ch } = crop;
  // Like Pillow, a pass whose size does not change is skipped (it would be the identity).
  const vert = outH !== srcH ? coeffs(srcH, outH, cy, ch) : null;
  // Source rows the vertical pass reads (all the horizontal pass has to produce).
  const row0 = vert ? vert.first[0]! : cy;
  const rows = vert ? vert.first[ch - 1]! + vert.count[ch - 1]! - row0 : ch;

  const stride = cw * 3;
  const mid = new Uint8Array(rows * stride); // the horizontally resampled (or cropped) rows
  if (outW !== srcW) {
    const { first, count, k, ksize } = coeffs(srcW, outW, cx, cw);
    for (let y = 0; y < rows; y++) {
      const line = (row0 + y) * srcW * 3;
      let o = y * stride;
      for (let x = 0; x < cw; x++) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        let p = line + first[x]! * 3;
        // int32 arithmetic (Math.imul, | 0) as in C; also V8's fastest form here.
        for (let t = x * ksize, end = t + count[x]!; t < end; t++, p += 3) {
          const w = k[t]!;
          s0 = (s0 + Math.imul(src[p]!, w)) | 0;
          s1 = (s1 + Math.imul(src[p + 1]!, w)) | 0;
          s2 = (s2 + Math.imul(src[p + 2]!, w)) | 0;
        }
        mid[o++] = clip8(s0);
        mid[o++] = clip8(s1);
        mid[o++] = clip8(s2);
      }
    }
  } else {
    for (let y = 0; y < rows; y++) {
      const start = ((row0 + y) * srcW + cx) * 3;
      mid.set(src.subarray(start, start + stride), y * stride);
    }
  }
  if (!vert) return mid;

  // Vertical pass, a pixel (3 sums sharing each weight) at a time, as the horizontal one.
  const out = new Uint8Array(ch * stride);
  const { first, count, k, ksize } = vert;
  for (let y = 0; y < ch; y++) {
    const base = (first[y]! - row0) * stride;
    const k0 = y * ksize;
    const k1 = k0 + count[y]!;
    for (let i = 0, o = y * stride; i < stride; i += 3, o += 3) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let t = k0, p = base + i; t < k1; t++, p += stride) {
        const w = k[t]!;
        s0 = (s0 + Math.imul(mid[p]!, w)) | 0;
        s1 = (s1 + Math.imul(mid[p + 1]!, w)) | 0;
        s2 = (s2 + Math.imul(mid[p + 2]!, w)) | 0;
      }
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}
