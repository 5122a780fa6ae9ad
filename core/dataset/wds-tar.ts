/**
 * @file Writing WebDataset shards: a tar of samples, each an image member and a `.cls` member
 * (CLIP_benchmark's layout), packed in memory with tar-stream. Deterministic: fixed mtime,
 * mode and owner, so the same samples always give the same bytes (a re-run of an export
 * rewrites identical objects).
 */
import { pack } from 'tar-stream';
import type { PlanItem } from './plan';
import { IMAGE_EXTENSIONS } from './types';

/** One tar member: its name in the tar and its bytes. */
export interface TarMember {
  name: string;
  data: Uint8Array;
}

const BLOCK = 512;
/** The two zero blocks that end a tar (tar-stream's finalize writes them). */
export const TAR_END_BYTES = 2 * BLOCK;

/**
 * Bytes one member takes in a tar: a header block and the data padded to whole blocks. Names
 * here are short (`s0000042.jpg`), so no PAX or GNU long-name header is ever added.
 */
export const tarMemberBytes = (size: number): number => BLOCK + Math.ceil(size / BLOCK) * BLOCK;

/** The tar holding `members`, in order, with fixed metadata. */
export async function packTar(members: readonly TarMember[]): Promise<Uint8Array> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of tar) chunks.push(chunk as Buffer);
  })();
  for (const m of members) {
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    await new Promise<void>((resolve, reject) =>
      tar.entry(
        { name: m.name, size: data.length, mtime: FIXED_MTIME, mode: 0o644, uid: 0, gid: 0 },
        data,
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  tar.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** The Unix epoch: members carry no time of export, so re-exports are byte-identical. */
const FIXED_MTIME = new Date(0);

/**
 * A sample's image extension: the source's own (its key, or its member name inside a tar),
 * lowercase, `jpeg` spelled `jpg` as CLIP_benchmark's converter does; where the source names none
 * clipeval decodes (a Parquet row, a manifest key without one), the format its bytes start with.
 * Undefined when neither says it is an image clipeval decodes.
 */
export function sampleExtension(item: PlanItem, bytes: Uint8Array): string | undefined {
  const name = item.uri.slice(item.uri.lastIndexOf('/') + 1);
  const member = item.part?.kind === 'tar' ? name.slice(name.indexOf('#') + 1) : name;
  const dot = member.lastIndexOf('.');
  const ext = dot === -1 || item.part?.kind === 'parquet' ? '' : member.slice(dot).toLowerCase();
  if (IMAGE_EXTENSIONS.includes(ext)) return ext === '.jpeg' ? 'jpg' : ext.slice(1);
  return sniffImageFormat(bytes);
}

const ascii = (bytes: Uint8Array, from: number, to: number) =>
  String.fromCharCode(...bytes.subarray(from, to));

/** The image format its first bytes announce, as an extension, among those clipeval decodes. */
export function sniffImageFormat(b: Uint8Array): string | undefined {
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpg';
  if (ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (/^GIF8[79]a$/.test(ascii(b, 0, 6))) return 'gif';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*') return 'tiff';
  if (ascii(b, 4, 8) === 'ftyp' && /^avi[fs]$/.test(ascii(b, 8, 12))) return 'avif';
  return undefined;
}
