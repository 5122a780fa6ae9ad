/**
 * @file Pillow's bicubic resize for 8-bit images (`src/libImaging/Resample.c`, Pillow 13),
 * reproduced bit for bit, fused with a crop: only the output window that survives the crop is
 * computed.
 *
 * Pillow resamples in two separable passes, horizontal first, with an intermediate image rounded
 * to 8 bits. For each output sample it centres a filter on the source (support grown by the
 * scale factor when shrinking, which is what antialiases), normalises the weights to sum to 1,
 * turns them into 22-bit fixed point, sums with a rounding offset and clips. Every output sample
 * depends only on its own coefficients, so computing a window gives exactly the same values as
 * resizing everything and cropping afterwards.
 *
 * Made fast without changing a byte (test/unit/resample.test.ts holds the straightforward port as
 * the reference): the passes run as WebAssembly SIMD kernels (./resample-simd.ts), 4 or 8 int32
 * sums per instruction. The JavaScript loops below are their fallback (no WebAssembly, or an image
 * too large for the kernels' memory): every output sample gets the same number of taps (windows
 * shifted inside the image, the extra taps weighted 0, which adds exactly 0 to an integer sum);
 * the horizontal pass runs two rows at once and the vertical one two pixels at once (each weight
 * loaded once for 6 sums); the intermediate rows reuse one scratch buffer; and when the width does
 * not change the vertical pass reads the source directly (no row copies). Coefficients are cached
 * per size for both.
 */
import { simdResize } from './resample-simd';

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
  /** Per output sample: first source index of its window of `taps` samples. */
  first: Int32Array;
  /** Fixed-point weights, `taps` per output sample (0 where Pillow's own window has no tap). */
  k: Int32Array;
  taps: number;
}

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for output samples
 * [from, from + n) of an inSize -> outSize resize. Same operations in the same order, in
 * doubles like the C code, so the weights are identical. Then every window is widened to the
 * widest one (`taps`, at most inSize) and moved left where it would pass the image's end.
 */
function coeffs(inSize: number, outSize: number, from: number, n: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterscale;
  const xmins = new Int32Array(n);
  const counts = new Int32Array(n);
  const pillow = new Int32Array(n * ksize);
  const w = new Float64Array(ksize);
  let taps = 1;
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
      pillow[i * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * ONE : 0.5 + v * ONE);
    }
    xmins[i] = xmin;
    counts[i] = xmax;
    taps = Math.max(taps, xmax);
  }
  taps = Math.min(taps, inSize);
  const first = new Int32Array(n);
  const k = new Int32Array(n * taps);
  for (let i = 0; i < n; i++) {
    // xmin + count <= inSize, so the moved window still holds all of Pillow's taps.
    const start = Math.min(xmins[i]!, inSize - taps);
    first[i] = start;
    const at = i * taps + xmins[i]! - start;
    k.set(pillow.subarray(i * ksize, i * ksize + counts[i]!), at);
  }
  return { first, k, taps };
}

// Per thread (each decode pool thread has its own module): a dataset's images mostly share a few
// sizes, so their coefficients are computed once. Bounded in bytes (a huge shrink has long
// windows): cleared when full; a table larger than the bound is not kept.
const cache = new Map<string, Coeffs>();
const CACHE_BYTES = 4 * 1024 ** 2;
let cachedBytes = 0;

function cachedCoeffs(inSize: number, outSize: number, from: number, n: number): Coeffs {
  const key = `${inSize} ${outSize} ${from} ${n}`;
  let c = cache.get(key);
  if (!c) {
    c = coeffs(inSize, outSize, from, n);
    const bytes = c.k.byteLength + c.first.byteLength;
    if (cachedBytes + bytes > CACHE_BYTES) {
      cache.clear();
      cachedBytes = 0;
    }
    if (bytes <= CACHE_BYTES) {
      cache.set(key, c);
      cachedBytes += bytes;
    }
  }
  return c;
}

/**
 * Pillow's `clip8`: drop the fraction bits (arithmetic shift), clamp to 0..255. Sums stay in
 * int32 as in C (|weights| sum to well under 2 and pixels are < 2^8, so < 2^31).
 */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// The JavaScript horizontal pass's output rows, reused from image to image (grown when too
// small, up to MAX_SCRATCH bytes: the rows of a 224 crop from images up to 24,000 pixels long).
let scratch: Uint8Array = new Uint8Array(0);
const MAX_SCRATCH = 16 * 1024 ** 2;
const grown = (buf: Uint8Array, bytes: number) =>
  buf.length >= bytes ? buf : new Uint8Array(bytes);

/**
 * Resizes an RGB (HWC, 8-bit) image to outW x outH with Pillow's BICUBIC filter and returns the
 * `crop` window of the result (x, y, width, height in output pixels), as HWC RGB. Equal to
 * `Image.resize((outW, outH), BICUBIC).crop(...)` without computing the discarded pixels.
 * `kernels`: 'auto' runs the WebAssembly SIMD passes (./resample-simd.ts) where available;
 * 'javascript' the loops below (the fallback; tests check both against the reference).
 */
export function resizeCropBicubic(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  outW: number,
  outH: number,
  crop: { x: number; y: number; width: number; height: number },
  kernels: 'auto' | 'javascript' = 'auto',
): Uint8Array {
  const { x: cx, y: cy, width: cw, height: ch } = crop;
  // The kernels index memory from these: a window outside the output has no meaning.
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  if (![srcW, srcH, outW, outH, cw, ch].every(whole) || src.length !== srcW * srcH * 3)
    throw new RangeError(`resize of ${srcW}x${srcH} RGB (${src.length} bytes) to ${outW}x${outH}`);
  if (!(Number.isInteger(cx) && Number.isInteger(cy) && cx >= 0 && cy >= 0))
    throw new RangeError(`crop at ${cx},${cy} is outside the ${outW}x${outH} output`);
  if (cx + cw > outW || cy + ch > outH)
    throw new RangeError(`crop ${cw}x${ch} at ${cx},${cy} is outside the ${outW}x${outH} output`);
  const stride = cw * 3;
  // Like Pillow, a pass whose size does not change is skipped (it would be the identity).
  if (outH === srcH) {
    if (outW === srcW) return cropRows(src, srcW, cx, cy, cw, ch);
    const hor = cachedCoeffs(srcW, outW, cx, cw);
    const fast =
      kernels === 'auto' ? simdResize(src, srcW, cy, ch, hor, undefined, cw, ch) : undefined;
    if (fast) return fast;
    const out = new Uint8Array(ch * stride);
    horizontal(src, srcW, cy, ch, hor, out, cw);
    return out;
  }
  const vert = cachedCoeffs(srcH, outH, cy, ch);
  // Source rows the vertical pass reads (all the horizontal pass has to produce).
  const row0 = vert.first[0]!;
  const rows = vert.first[ch - 1]! + vert.taps - row0;
  if (outW === srcW) {
    // Rare (the width is already the target): the JavaScript vertical pass reads the source.
    const out = new Uint8Array(ch * stride);
    vertical(src, srcW * 3, cx * 3, vert, 0, out, ch, stride);
    return out;
  }
  const hor = cachedCoeffs(srcW, outW, cx, cw);
  const fast =
    kernels === 'auto' ? simdResize(src, srcW, row0, rows, hor, vert, cw, ch) : undefined;
  if (fast) return fast;
  const out = new Uint8Array(ch * stride);
  // Scratch rows are kept for the next image, up to a bound (a huge image's are let go).
  const mid =
    rows * stride <= MAX_SCRATCH
      ? (scratch = grown(scratch, rows * stride))
      : new Uint8Array(rows * stride);
  horizontal(src, srcW, row0, rows, hor, mid, cw);
  vertical(mid, stride, 0, vert, row0, out, ch, stride);
  return out;
}

/** The crop window of an image that is not resized, as a new array. */
function cropRows(
  src: Uint8Array,
  srcW: number,
  cx: number,
  cy: number,
  cw: number,
  ch: number,
): Uint8Array {
  const stride = cw * 3;
  const out = new Uint8Array(ch * stride);
  for (let y = 0; y < ch; y++) {
    const start = ((cy + y) * srcW + cx) * 3;
    out.set(src.subarray(start, start + stride), y * stride);
  }
  return out;
}

/**
 * Horizontal pass over source rows [row0, row0 + rows) into `mid` (cw pixels a row), two rows at
 * a time: they share every weight and window. int32 arithmetic (Math.imul, | 0) as in C; also
 * V8's fastest form here.
 */
function horizontal(
  src: Uint8Array,
  srcW: number,
  row0: number,
  rows: number,
  { first, k, taps }: Coeffs,
  mid: Uint8Array,
  cw: number,
): void {
  const stride = cw * 3;
  const srcStride = srcW * 3;
  let y = 0;
  for (; y + 1 < rows; y += 2) {
    const line = (row0 + y) * srcStride;
    for (let x = 0, t = 0, o = y * stride; x < cw; x++, o += 3) {
      let a0 = HALF;
      let a1 = HALF;
      let a2 = HALF;
      let b0 = HALF;
      let b1 = HALF;
      let b2 = HALF;
      for (let p = line + first[x]! * 3, end = t + taps; t < end; t++, p += 3) {
        const w = k[t]!;
        const q = p + srcStride;
        a0 = (a0 + Math.imul(src[p]!, w)) | 0;
        a1 = (a1 + Math.imul(src[p + 1]!, w)) | 0;
        a2 = (a2 + Math.imul(src[p + 2]!, w)) | 0;
        b0 = (b0 + Math.imul(src[q]!, w)) | 0;
        b1 = (b1 + Math.imul(src[q + 1]!, w)) | 0;
        b2 = (b2 + Math.imul(src[q + 2]!, w)) | 0;
      }
      mid[o] = clip8(a0);
      mid[o + 1] = clip8(a1);
      mid[o + 2] = clip8(a2);
      mid[o + stride] = clip8(b0);
      mid[o + stride + 1] = clip8(b1);
      mid[o + stride + 2] = clip8(b2);
    }
  }
  if (y < rows) {
    // The odd last row.
    const line = (row0 + y) * srcStride;
    for (let x = 0, t = 0, o = y * stride; x < cw; x++, o += 3) {
      let a0 = HALF;
      let a1 = HALF;
      let a2 = HALF;
      for (let p = line + first[x]! * 3, end = t + taps; t < end; t++, p += 3) {
        const w = k[t]!;
        a0 = (a0 + Math.imul(src[p]!, w)) | 0;
        a1 = (a1 + Math.imul(src[p + 1]!, w)) | 0;
        a2 = (a2 + Math.imul(src[p + 2]!, w)) | 0;
      }
      mid[o] = clip8(a0);
      mid[o + 1] = clip8(a1);
      mid[o + 2] = clip8(a2);
    }
  }
}

/**
 * Vertical pass into `out` (ch rows of `stride` bytes), two pixels (6 sums) at a time sharing
 * each weight. Row r of the image starts at `img[(r - row0) * imgStride + offset]`, so it reads
 * the horizontal pass's rows or, with an offset to the crop's columns, the source itself.
 */
function vertical(
  img: Uint8Array,
  imgStride: number,
  offset: number,
  { first, k, taps }: Coeffs,
  row0: number,
  out: Uint8Array,
  ch: number,
  stride: number,
): void {
  for (let y = 0; y < ch; y++) {
    const base = (first[y]! - row0) * imgStride + offset;
    const k0 = y * taps;
    const k1 = k0 + taps;
    let i = 0;
    let o = y * stride;
    for (; i + 6 <= stride; i += 6, o += 6) {
      let a0 = HALF;
      let a1 = HALF;
      let a2 = HALF;
      let b0 = HALF;
      let b1 = HALF;
      let b2 = HALF;
      for (let t = k0, p = base + i; t < k1; t++, p += imgStride) {
        const w = k[t]!;
        a0 = (a0 + Math.imul(img[p]!, w)) | 0;
        a1 = (a1 + Math.imul(img[p + 1]!, w)) | 0;
        a2 = (a2 + Math.imul(img[p + 2]!, w)) | 0;
        b0 = (b0 + Math.imul(img[p + 3]!, w)) | 0;
        b1 = (b1 + Math.imul(img[p + 4]!, w)) | 0;
        b2 = (b2 + Math.imul(img[p + 5]!, w)) | 0;
      }
      out[o] = clip8(a0);
      out[o + 1] = clip8(a1);
      out[o + 2] = clip8(a2);
      out[o + 3] = clip8(b0);
      out[o + 4] = clip8(b1);
      out[o + 5] = clip8(b2);
    }
    if (i < stride) {
      // An odd crop width's last pixel.
      let a0 = HALF;
      let a1 = HALF;
      let a2 = HALF;
      for (let t = k0, p = base + i; t < k1; t++, p += imgStride) {
        const w = k[t]!;
        a0 = (a0 + Math.imul(img[p]!, w)) | 0;
        a1 = (a1 + Math.imul(img[p + 1]!, w)) | 0;
        a2 = (a2 + Math.imul(img[p + 2]!, w)) | 0;
      }
      out[o] = clip8(a0);
      out[o + 1] = clip8(a1);
      out[o + 2] = clip8(a2);
    }
  }
}
