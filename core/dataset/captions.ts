/**
 * @file Image captions for zero-shot retrieval: how each format's captions are read and checked,
 * and runs/<runId>/captions.json, the captions of a plan's images (beside plan.json, so the plan
 * stays small). A caption is text as given: no templates, no trimming beyond a line's own
 * whitespace; the model's tokenizer cleans and truncates it as CLIP_benchmark's does.
 */
import { createHash } from 'node:crypto';
import { quoted } from '../util/text';

/** A longer caption is not a caption (CLIP's text tower reads 77 tokens, ~300 characters). */
export const MAX_CAPTION_CHARS = 2000;
/** More captions than this for one image is not a caption list (MS-COCO has 5, Flickr30k 5). */
export const MAX_CAPTIONS_PER_IMAGE = 100;
/**
 * A WebDataset .txt larger than this is not read (its sample is skipped): 100 captions of 2,000
 * characters of UTF-8 fit.
 */
export const MAX_CAPTION_FILE_BYTES = 1024 * 1024;

/** runs/<runId>/captions.json: every planned image's captions, in plan item order. */
export interface CaptionsFile {
  version: 1;
  runId: string;
  /** Images with at least one caption; an image of the plan absent here has none. */
  images: { uri: string; captions: string[] }[];
}

/** What plan.json says of the captions: counts and the hash folded into its fingerprint. */
export interface PlanCaptions {
  images: number;
  captions: number;
  /** Captioned images in the test split: what retrieval ranks (`auto` runs it when any). */
  testImages: number;
  /** sha256 over every image URI and its captions. */
  hash: string;
}

/**
 * The captions of a list, or why it is no caption list (a phrase: "caption 3 is empty"). Each
 * must be a non-empty string of at most MAX_CAPTION_CHARS characters, at most
 * MAX_CAPTIONS_PER_IMAGE of them, at least one.
 */
export function checkCaptions(value: unknown): string[] | string {
  if (!Array.isArray(value)) return 'captions is not a list of strings';
  if (value.length === 0) return 'captions is an empty list';
  if (value.length > MAX_CAPTIONS_PER_IMAGE)
    return `${value.length} captions; an image has at most ${MAX_CAPTIONS_PER_IMAGE}`;
  for (const [i, c] of value.entries()) {
    if (typeof c !== 'string') return `caption ${i + 1} is not text (${typeof c})`;
    if (c.trim() === '') return `caption ${i + 1} is empty`;
    if (c.length > MAX_CAPTION_CHARS)
      return `caption ${i + 1} is ${c.length} characters (${quoted(c, 40)}); a caption has at most ${MAX_CAPTION_CHARS}`;
  }
  return value as string[];
}

/**
 * A WebDataset .txt's captions, as CLIP_benchmark writes and reads them: one caption per line
 * (Python's str.splitlines breaks), empty lines dropped; or why it holds none (not UTF-8, ...).
 */
export function captionLines(bytes: Uint8Array): string[] | string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return 'its .txt captions are not UTF-8 text';
  }
  const lines = splitLines(text.replace(/^\ufeff/, '')).filter((l) => l.trim() !== '');
  if (lines.length === 0) return 'its .txt holds no caption (no non-empty line)';
  const checked = checkCaptions(lines);
  return typeof checked === 'string' ? `its .txt: ${checked}` : checked;
}

/** What Python's str.splitlines breaks at besides \r\n (the file separators 0x1c-0x1e too). */
const BREAKS = new Set([
  '\n',
  '\r',
  '\v',
  '\f',
  '\u001c',
  '\u001d',
  '\u001e',
  '\u0085',
  '\u2028',
  '\u2029',
]);

/** Python's str.splitlines: \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029. */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    if (!BREAKS.has(text[i]!)) continue;
    lines.push(text.slice(from, i));
    if (text[i] === '\r' && text[i + 1] === '\n') i++;
    from = i + 1;
  }
  if (from < text.length) lines.push(text.slice(from));
  return lines;
}

/**
 * A CSV manifest's captions cell: a JSON list of strings (`["a dog", "a brown dog"]`), or why
 * it is none. A cell that is not JSON is refused rather than read as one caption: a caption with
 * a comma or a quote would otherwise be silently split or mangled by hand-written CSV.
 */
export function csvCaptions(cell: string): string[] | string {
  let value: unknown;
  try {
    value = JSON.parse(cell);
  } catch {
    return 'captions is not a JSON list of strings (write the cell as ["first caption", "second caption"])';
  }
  return checkCaptions(value);
}

/** The captions' hash: every image URI and its captions, in the given order. */
export function captionsHash(images: readonly { uri: string; captions: string[] }[]): string {
  const h = createHash('sha256');
  for (const i of images) h.update(`${JSON.stringify(i.uri)}\t${JSON.stringify(i.captions)}\n`);
  return h.digest('hex');
}
