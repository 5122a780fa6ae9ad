/**
 * @file Decompression bombs, made in memory in well under a second: files of a few KiB (or a
 * few hundred) whose headers declare images of hundreds of megapixels or more. Nothing here is
 * committed; tests build what they need.
 */
import { createDeflate } from 'node:zlib';
import sharp from 'sharp';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A valid PNG of `width` x `height` in one colour: every row is filter 0 and the same samples,
 * deflated as a stream (a 10000x10000 16-bit RGB image, 600 MB of pixels, is ~600 KB here).
 */
export async function solidPng(opts: {
  width: number;
  height: number;
  depth: 8 | 16;
  channels: 1 | 3;
  value?: number;
}): Promise<Buffer> {
  const { width, height, depth, channels } = opts;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = channels === 1 ? 0 : 2; // grey or truecolour
  const row = Buffer.alloc(1 + (width * channels * depth) / 8, opts.value ?? 0x40);
  row[0] = 0; // filter: none
  const deflate = createDeflate({ level: 1 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  for (let y = 0; y < height; y++) {
    if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.concat(out)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A small real image of `format`, to patch. */
const small = (format: 'jpeg' | 'gif' | 'webp') =>
  sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 9, g: 99, b: 199 } } })
    .toFormat(format)
    .toBuffer();

/** A 16x16 baseline JPEG whose frame header (SOF0) declares width x height. */
export async function jpegDeclaring(width: number, height: number): Promise<Buffer> {
  const jpg = await small('jpeg');
  for (let at = 2; at + 9 < jpg.length;) {
    if (jpg[at] !== 0xff) throw new Error('unexpected JPEG layout');
    const marker = jpg[at + 1]!;
    if (marker === 0xc0 || marker === 0xc2) {
      jpg.writeUInt16BE(height, at + 5);
      jpg.writeUInt16BE(width, at + 7);
      return jpg;
    }
    at += 2 + jpg.readUInt16BE(at + 2);
  }
  throw new Error('no SOF marker');
}

/** A 16x16 GIF whose logical screen and first frame declare width x height. */
export async function gifDeclaring(width: number, height: number): Promise<Buffer> {
  const gif = await small('gif');
  gif.writeUInt16LE(width, 6);
  gif.writeUInt16LE(height, 8);
  const flags = gif[10]!;
  let at = 13 + (flags & 0x80 ? 3 * (2 << (flags & 7)) : 0);
  while (gif[at] === 0x21) {
    at += 2;
    while (gif[at] !== 0) at += gif[at]! + 1;
    at++;
  }
  if (gif[at] !== 0x2c) throw new Error('no image descriptor');
  gif.writeUInt16LE(width, at + 5);
  gif.writeUInt16LE(height, at + 7);
  return gif;
}

/** A 16x16 lossy WebP whose VP8 frame header declares width x height (at most 16383). */
export async function webpDeclaring(width: number, height: number): Promise<Buffer> {
  const webp = await small('webp');
  if (webp.toString('latin1', 12, 16) !== 'VP8 ') throw new Error('expected a simple VP8 WebP');
  if (webp[23] !== 0x9d || webp[24] !== 0x01 || webp[25] !== 0x2a)
    throw new Error('no VP8 start code');
  webp.writeUInt16LE(width & 0x3fff, 26);
  webp.writeUInt16LE(height & 0x3fff, 28);
  return webp;
}

/** A grey 8-bit TIFF declaring width x height, with 64 bytes of pixel data (one strip). */
export function tiffDeclaring(width: number, height: number): Buffer {
  const entries: [tag: number, type: number, value: number][] = [
    [256, 4, width], // ImageWidth, LONG
    [257, 4, height], // ImageLength
    [258, 3, 8], // BitsPerSample, SHORT
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: min-is-black
    [273, 4, 0], // StripOffsets (patched below)
    [277, 3, 1], // SamplesPerPixel
    [278, 4, height], // RowsPerStrip
    [279, 4, 64], // StripByteCounts
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const dataAt = 8 + ifdSize;
  const buf = Buffer.alloc(dataAt + 64, 0x80);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(8, 4);
  buf.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    buf.writeUInt16LE(tag, at);
    buf.writeUInt16LE(type, at + 2);
    buf.writeUInt32LE(1, at + 4);
    if (type === 3) buf.writeUInt16LE(value, at + 8);
    else buf.writeUInt32LE(tag === 273 ? dataAt : value, at + 8);
  });
  buf.writeUInt32LE(0, 10 + entries.length * 12); // no next IFD
  return buf;
}
