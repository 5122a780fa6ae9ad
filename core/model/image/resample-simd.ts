/**
 * @file The two passes of ./resample.ts as WebAssembly SIMD kernels: the same int32 sums with the
 * same weights (products < 2^30, sums < 2^31: exact, as in C), 4 (horizontal) or 8 (vertical) of
 * them per instruction, so the same bytes; about 4x faster than the JavaScript loops (measured at
 * 640x480 -> 224 on one core). There is no WebAssembly toolchain among clipeval's dependencies,
 * so the module is assembled here from its instructions (a few dozen, each named as in the spec)
 * when first used; Node 20 runs WebAssembly SIMD everywhere except under --jitless, where
 * `simdKernels()` is undefined and ./resample.ts keeps its JavaScript loops.
 *
 * Horizontal, per output pixel and for two rows at once (sharing each weight): one i32x4 sum
 * [R, G, B, x] per row starting at Pillow's rounding offset; per tap, the pixel's 4 bytes (the
 * 4th is the next pixel's red: its lane is ignored) widened to i32x4, times the weight, added.
 * Vertical, per output row: for each 8 bytes of the row, two i32x4 sums over the taps' rows. Both
 * end as Pillow's clip8: an arithmetic shift by 22, then two saturating narrowings (i32 -> i16
 * signed keeps the shifted value, which lies in -512..511; i16 -> u8 clamps to 0..255). Wide
 * stores spill up to 7 bytes past a row into the next row (written after it, in order) or into
 * the padding the caller leaves after each buffer; wide loads read into that padding likewise.
 */

const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n !== 0 ? b | 0x80 : b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

// The instructions used, by their names in the WebAssembly spec.
const get = (local: number) => [0x20, ...uleb(local)];
const set = (local: number) => [0x21, ...uleb(local)];
const tee = (local: number) => [0x22, ...uleb(local)];
const i32 = (n: number) => [0x41, ...sleb(n)];
const loop = [0x03, 0x40]; // loop with no result
const end = [0x0b];
const brIf = (depth: number) => [0x0d, ...uleb(depth)];
const i32Add = [0x6a];
const i32Sub = [0x6b];
const i32Mul = [0x6c];
const i32LtU = [0x49];
const i32Load = [0x28, 0, 0]; // memarg: alignment hint 1 byte, offset 0
const i32Store = [0x36, 0, 0];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128Load32Zero = [...simd(0x5c), 0, 0];
const v128Load8x8U = [...simd(0x02), 0, 0]; // 8 bytes widened to i16x8
const v128Store64Lane0 = [...simd(0x5b), 0, 0, 0];
const v128Store16Lane = (lane: number) => [...simd(0x59), 0, 0, lane]; // 16-bit lane at the address
const v128Store8Lane = (lane: number) => [...simd(0x58), 0, lane, lane]; // byte `lane` at address + lane
const i32x4Splat = simd(0x11);
const i32x4ExtractLane0 = [...simd(0x1b), 0];
const i16x8ExtendLowI8x16U = simd(0x89);
const i32x4ExtendLowI16x8U = simd(0xa9);
const i32x4ExtendHighI16x8U = simd(0xaa);
const i32x4Add = simd(0xae);
const i32x4Mul = simd(0xb5);
const i32x4ShrS = simd(0xac);
const i16x8NarrowI32x4S = simd(0x85);
const i8x16NarrowI16x8U = simd(0x66);

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

/** `local++ < limit` as a loop's continue test (every loop here runs at least once). */
const next = (local: number, limit: number) => [
  ...get(local),
  ...i32(1),
  ...i32Add,
  ...tee(local),
  ...get(limit),
  ...i32LtU,
  ...brIf(0),
];
const addTo = (local: number, n: number) => [...get(local), ...i32(n), ...i32Add, ...set(local)];
const addLocal = (local: number, other: number) => [
  ...get(local),
  ...get(other),
  ...i32Add,
  ...set(local),
];
/** clip8 of the i32x4 sums in locals a and b, as 8 bytes (4 from each) in the low lanes. */
const clip8 = (a: number, b: number, tmp: number) => [
  ...get(a),
  ...i32(PRECISION_BITS),
  ...i32x4ShrS,
  ...get(b),
  ...i32(PRECISION_BITS),
  ...i32x4ShrS,
  ...i16x8NarrowI32x4S,
  ...tee(tmp),
  ...get(tmp),
  ...i8x16NarrowI16x8U,
];

/**
 * horizontal(src, srcStride, rows, cw, first, k, taps, mid): for each of `rows` rows from `src`,
 * the cw output pixels into `mid` (3 bytes each, rows back to back). first[x] (i32) is the
 * source pixel where output x's window of `taps` weights k[x * taps ...] (i32) starts. Two rows
 * at a time (they share every weight); `rows` must be even: the caller pads an odd count with a
 * row it ignores (read from its padding, written where the next row or the padding goes).
 */
function horizontalBody(): number[] {
  const [src, srcStride, rows, cw, first, k, taps, mid] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [y, x, t, p, kp, o, line, fp, stride] = [8, 9, 10, 11, 12, 13, 14, 15, 16];
  const [acc, acc2, w] = [17, 18, 19];
  const locals = [uleb(9), I32, uleb(3), V128].flat(); // y .. stride, then acc, acc2, w
  const widened = (address: number[]) => [
    ...address,
    ...v128Load32Zero,
    ...i16x8ExtendLowI8x16U,
    ...i32x4ExtendLowI16x8U,
  ];
  const code = [
    ...[...get(src), ...set(line), ...get(mid), ...set(o)],
    ...[...get(cw), ...i32(3), ...i32Mul, ...set(stride)],
    ...loop, // pairs of rows
    ...[...get(first), ...set(fp), ...get(k), ...set(kp), ...i32(0), ...set(x)],
    ...loop, // output pixels
    ...[...get(line), ...get(fp), ...i32Load, ...i32(3), ...i32Mul, ...i32Add, ...set(p)],
    ...[...i32(HALF), ...i32x4Splat, ...tee(acc), ...set(acc2)],
    ...i32(0),
    ...set(t),
    ...loop, // taps: acc += widen(pixel at p) * k[kp], acc2 the same a row below
    ...[...get(kp), ...i32Load, ...i32x4Splat, ...set(w)],
    ...[...get(acc), ...widened(get(p)), ...get(w), ...i32x4Mul, ...i32x4Add, ...set(acc)],
    ...get(acc2),
    ...widened([...get(p), ...get(srcStride), ...i32Add]),
    ...[...get(w), ...i32x4Mul, ...i32x4Add, ...set(acc2)],
    ...addTo(p, 3),
    ...addTo(kp, 4),
    ...next(t, taps),
    ...end,
    // The first row's 3 bytes exactly (R, G, then B): a 4th would land on the second row's
    // first pixel, already written. The second row's: 4 bytes at once, the 4th overwritten
    // next (by the next pixel, the next pair of rows, or nothing: the caller's padding).
    ...[...get(o), ...clip8(acc, acc, acc), ...tee(acc), ...v128Store16Lane(0)],
    ...[...get(o), ...get(acc), ...v128Store8Lane(2)],
    ...[...get(o), ...get(stride), ...i32Add, ...clip8(acc2, acc2, acc2)],
    ...[...i32x4ExtractLane0, ...i32Store],
    ...addTo(o, 3),
    ...addTo(fp, 4),
    ...next(x, cw),
    ...end,
    // o is at the second row's start: skip it; the source moves down two rows.
    ...addLocal(o, stride),
    ...[...get(line), ...get(srcStride), ...i32(2), ...i32Mul, ...i32Add, ...set(line)],
    ...[...get(y), ...i32(2), ...i32Add, ...tee(y), ...get(rows), ...i32LtU, ...brIf(0)],
    ...end,
  ];
  return [...uleb(2), ...locals, ...code, ...end];
}

/**
 * vertical(img, imgStride, width, out, ch, first, k, taps): output row y (`width` bytes at
 * out + y * width) sums rows img + first[y] + r * imgStride (first[y]: a byte offset, i32) for
 * r < taps, weighted by k[y * taps + r] (i32); 8 bytes at a time.
 */
function verticalBody(): number[] {
  const [img, imgStride, width, out, ch, first, k, taps] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [y, i, t, p, kp, o, base, krow, fp] = [8, 9, 10, 11, 12, 13, 14, 15, 16];
  const [a, b, w, px] = [17, 18, 19, 20];
  const locals = [uleb(9), I32, uleb(4), V128].flat(); // y .. fp, then a .. px
  const code = [
    ...[...get(first), ...set(fp), ...get(k), ...set(krow), ...get(out), ...set(o)],
    ...loop, // output rows
    ...[...get(img), ...get(fp), ...i32Load, ...i32Add, ...set(base)],
    ...i32(0),
    ...set(i),
    ...loop, // 8 bytes of the row
    ...[...i32(HALF), ...i32x4Splat, ...tee(a), ...set(b)],
    ...[...get(base), ...get(i), ...i32Add, ...set(p), ...get(krow), ...set(kp)],
    ...i32(0),
    ...set(t),
    ...loop, // taps
    ...[...get(kp), ...i32Load, ...i32x4Splat, ...set(w)],
    ...[...get(p), ...v128Load8x8U, ...set(px)],
    ...[...get(a), ...get(px), ...i32x4ExtendLowI16x8U, ...get(w), ...i32x4Mul, ...i32x4Add],
    ...set(a),
    ...[...get(b), ...get(px), ...i32x4ExtendHighI16x8U, ...get(w), ...i32x4Mul, ...i32x4Add],
    ...set(b),
    ...addLocal(p, imgStride),
    ...addTo(kp, 4),
    ...next(t, taps),
    ...end,
    ...[...get(o), ...clip8(a, b, px), ...v128Store64Lane0],
    ...addTo(o, 8),
    ...addTo(i, 8),
    ...[...get(i), ...get(width), ...i32LtU, ...brIf(0)],
    ...end,
    // The row's last store may have run past `width`: the next row starts at out + (y+1) * width.
    ...[...get(o), ...get(i), ...get(width), ...i32Sub, ...i32Sub, ...set(o)], // o -= i - width
    ...addTo(fp, 4),
    ...[...get(krow), ...get(taps), ...i32(4), ...i32Mul, ...i32Add, ...set(krow)],
    ...next(y, ch),
    ...end,
  ];
  return [...uleb(2), ...locals, ...code, ...end];
}

function section(id: number, contents: number[]): number[] {
  return [id, ...uleb(contents.length), ...contents];
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];

/** The module's bytes: memory "memory", functions "horizontal" and "vertical". */
function moduleBytes(): Uint8Array {
  const fnType = (params: number) => [
    0x60,
    ...uleb(params),
    ...new Array<number>(params).fill(I32),
    0,
  ];
  const bodies = [horizontalBody(), verticalBody()];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec([fnType(8), fnType(8)])),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x00, 1]])), // memory: min 1 page, no max
    ...section(
      7,
      vec([
        [...name('memory'), 0x02, 0],
        [...name('horizontal'), 0x00, 0],
        [...name('vertical'), 0x00, 1],
      ]),
    ),
    ...section(10, vec(bodies.map((b) => [...uleb(b.length), ...b]))),
  ]);
}

/** The slice of the WebAssembly API used (not in this project's TypeScript libs: no DOM). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

export interface SimdKernels {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  horizontal: (
    src: number,
    srcStride: number,
    rows: number,
    cw: number,
    first: number,
    k: number,
    taps: number,
    mid: number,
  ) => void;
  vertical: (
    img: number,
    imgStride: number,
    width: number,
    out: number,
    ch: number,
    first: number,
    k: number,
    taps: number,
  ) => void;
}

let kernels: SimdKernels | null | undefined;

/** The kernels (one instance per thread), or undefined where WebAssembly SIMD is not available. */
export function simdKernels(): SimdKernels | undefined {
  if (kernels === undefined) {
    kernels = null;
    try {
      const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
      const bytes = moduleBytes();
      if (wasm?.validate(bytes)) {
        const instance = new wasm.Instance(new wasm.Module(bytes));
        kernels = instance.exports as SimdKernels;
      }
    } catch {
      kernels = null; // no WebAssembly (--jitless): the JavaScript loops run instead
    }
  }
  return kernels ?? undefined;
}

/** Each output sample's window (first source index) and `taps` weights, from ./resample.ts. */
export interface Windows {
  first: Int32Array;
  k: Int32Array;
  taps: number;
}

// The module's memory is the thread's for good (WebAssembly memory never shrinks): images whose
// buffers would take more run the JavaScript loops instead. 16 MiB holds the rows of a 224 crop
// from images up to about 24,000 pixels on their long side.
const MAX_MEMORY = 16 * 1024 ** 2;
// The source is copied in bands of rows about this large (cache-sized), not all at once.
const BAND_BYTES = 128 * 1024;
// Room after every buffer for the kernels' wide loads and stores (at most 7 bytes past the end).
const PAD = 16;
const align16 = (n: number) => (n + 15) & ~15;

/**
 * The horizontal pass over source rows [row0, row0 + rows) (`hor`), then, with `vert`, the
 * vertical pass (its windows' first rows counted from row0), in WebAssembly; the crop's
 * cw x ch pixels as a new array, or undefined where the kernels are not available or the
 * image's buffers would pass MAX_MEMORY.
 */
export function simdResize(
  src: Uint8Array,
  srcW: number,
  row0: number,
  rows: number,
  hor: Windows,
  vert: Windows | undefined,
  cw: number,
  ch: number,
): Uint8Array | undefined {
  const kern = simdKernels();
  if (!kern) return undefined;
  const srcStride = srcW * 3;
  const stride = cw * 3;
  // Rows go in even bands (the horizontal kernel takes rows two at a time).
  const band =
    2 * Math.max(1, Math.min(Math.ceil(rows / 2), Math.floor(BAND_BYTES / srcStride / 2)));
  // Layout: source band | horizontal output | vertical output | the i32 tables; the first two
  // with a row more for the odd row count's extra row.
  const mid = align16((band + 1) * srcStride + PAD);
  let at = align16(mid + (rows + 1) * stride + PAD);
  let out = mid;
  if (vert) {
    out = at;
    at = align16(out + ch * stride + PAD);
  }
  const hFirst = at;
  const hK = hFirst + 4 * cw;
  const vFirst = hK + 4 * hor.k.length;
  const vK = vFirst + (vert ? 4 * ch : 0);
  const end = vK + (vert ? 4 * vert.k.length : 0);
  if (end > MAX_MEMORY) return undefined;
  const { memory } = kern;
  if (end > memory.buffer.byteLength)
    memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  const heap = new Uint8Array(memory.buffer);
  const words = new Int32Array(memory.buffer);
  words.set(hor.first, hFirst / 4);
  words.set(hor.k, hK / 4);
  for (let y = 0; y < rows; y += band) {
    const n = Math.min(band, rows - y);
    heap.set(src.subarray((row0 + y) * srcStride, (row0 + y + n) * srcStride), 0);
    kern.horizontal(0, srcStride, n + (n % 2), cw, hFirst, hK, hor.taps, mid + y * stride);
  }
  if (vert) {
    // The vertical kernel takes each window's first row as a byte offset into the rows.
    for (let y = 0; y < ch; y++) words[vFirst / 4 + y] = (vert.first[y]! - row0) * stride;
    words.set(vert.k, vK / 4);
    kern.vertical(mid, stride, stride, out, ch, vFirst, vK, vert.taps);
  }
  return heap.slice(out, out + ch * stride);
}
