/**
 * @file A tar's members grouped into WebDataset samples, by webdataset's rule: the member name
 * up to the first '.' of its last path segment is the sample key, the rest its extension
 * (`s0000000.jpg` + `s0000000.cls`). A sample is one image and its `.cls` label, with its `.txt`
 * captions if it has them (one per line, CLIP_benchmark's retrieval layout); in an unlabelled
 * dataset (no class names) one image and its `.txt`. Anything else is a counted skip with its
 * reason. Members of other extensions (.json...) are ignored.
 */
import { quoted, shown } from '../../util/text';
import { MAX_CAPTION_FILE_BYTES, captionLines } from '../captions';
import { IMAGE_EXTENSIONS, type SkippedObject } from '../types';
import type { TarEntry } from './tar-index';

/** A .cls longer than this is not a label index (its bytes are not read). */
export const MAX_CLS_BYTES = 64;

const IMAGE = new Set(IMAGE_EXTENSIONS.map((e) => e.slice(1)));

/** One image of a tar: its label (absent in an unlabelled dataset) and captions (if any). */
export interface Sample {
  key: string;
  image: TarEntry;
  label?: number;
  captions?: string[];
}

/** Whether the walker should return a member's bytes: a .cls small enough to be a label, a .txt of captions. */
export const wantsData = (name: string, size: number): boolean => {
  const ext = splitName(name)?.ext.toLowerCase();
  return (
    (ext === 'cls' && size <= MAX_CLS_BYTES) || (ext === 'txt' && size <= MAX_CAPTION_FILE_BYTES)
  );
};

/** webdataset's base_plus_ext: key and extension, or undefined (no '.', or a leading '.'). */
function splitName(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1) return undefined;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1) };
}

interface Group {
  key: string;
  members: Map<string, TarEntry>;
  /** The key had a whole sample earlier in this tar. */
  duplicate: boolean;
}

/**
 * The tar's samples (in member order) and its skipped members. `labels` is the label space's
 * size: a label outside 0..labels-1 is skipped; undefined for an unlabelled dataset, whose samples
 * are an image and its .txt captions. `tarUri` names the members in skip reasons.
 */
export function groupSamples(
  entries: readonly TarEntry[],
  labels: number | undefined,
  tarUri: string,
): { samples: Sample[]; skipped: SkippedObject[] } {
  const groups: Group[] = [];
  const latest = new Map<string, Group>();
  const skipped: SkippedObject[] = [];
  for (const entry of entries) {
    const parts = splitName(entry.name);
    const ext = parts?.ext.toLowerCase();
    if (!parts || (ext !== 'cls' && ext !== 'txt' && !IMAGE.has(ext!))) {
      // Other members (.txt, .json, directories' files) are not samples; an image without a
      // key (".jpg", "._s1.jpg" from macOS) would be silently lost, so it is counted.
      if (!parts && IMAGE_EXTENSIONS.some((e) => entry.name.toLowerCase().endsWith(e))) {
        skipped.push({
          uri: `${tarUri}#${entry.name}`,
          reason: 'an image with no sample key (its name starts with ".")',
        });
      }
      continue;
    }
    const last = latest.get(parts.key);
    if (last && !last.members.has(ext!)) {
      last.members.set(ext!, entry);
      continue;
    }
    // The key's extension again: another sample under a key already used in this tar.
    const group: Group = { key: parts.key, members: new Map([[ext!, entry]]), duplicate: !!last };
    groups.push(group);
    latest.set(parts.key, group);
  }
  const samples: Sample[] = [];
  for (const g of groups) {
    const members = [...g.members];
    const images = members.filter(([ext]) => ext !== 'cls' && ext !== 'txt');
    const cls = g.members.get('cls');
    const txt = g.members.get('txt');
    const uri = `${tarUri}#${(images[0] ?? members[0]!)[1].name}`;
    const skip = (reason: string) => skipped.push({ uri, reason });
    if (g.duplicate) skip(`duplicate key ${quoted(g.key)} (first in ${shown(tarUri)})`);
    else if (images.length === 0) {
      // A lone .txt is a caption without its image only where samples are captioned images.
      if (cls) skip(`a .cls label without an image (key ${quoted(g.key)})`);
      else if (labels === undefined)
        skip(`a .txt caption file without an image (key ${quoted(g.key)})`);
    } else if (images.length > 1)
      skip(
        `${images.length} images under one key ${quoted(g.key)} (${images.map(([e]) => `.${e}`).join(', ')}): a sample has one`,
      );
    else if (labels !== undefined && !cls)
      skip(`an image without its .cls label (key ${quoted(g.key)})`);
    else if (labels === undefined && !txt)
      skip(
        `an image without its .txt captions (key ${quoted(g.key)}; the dataset has no class names, so samples are captioned images)`,
      );
    else {
      const label = labels === undefined ? undefined : parseLabel(cls!, labels);
      const captions = txt ? parseCaptions(txt) : undefined;
      if (typeof label === 'string') skip(label);
      else if (typeof captions === 'string') skip(captions);
      else
        samples.push({
          key: g.key,
          image: images[0]![1],
          ...(label !== undefined ? { label } : {}),
          ...(captions ? { captions } : {}),
        });
    }
  }
  return { samples, skipped };
}

/** The captions a .txt holds, or why it holds none. */
function parseCaptions(txt: TarEntry): string[] | string {
  if (txt.data === undefined)
    return `its .txt captions are ${txt.size} bytes, over the ${MAX_CAPTION_FILE_BYTES} a caption file may have`;
  return captionLines(txt.data);
}

/** The label a .cls holds, or why it holds none. */
function parseLabel(cls: TarEntry, labels: number): number | string {
  if (cls.data === undefined) {
    return `its .cls label is ${cls.size} bytes: not a label index (a decimal integer)`;
  }
  const text = Buffer.from(cls.data).toString('utf8').trimEnd();
  if (!/^\d+$/.test(text))
    return `its .cls holds ${quoted(text, 40)}, not a label index (a decimal integer)`;
  const label = Number(text);
  if (label >= labels) {
    return `label ${text.length > 20 ? `${text.slice(0, 20)}…` : text} is outside the dataset's ${labels} classes (0..${labels - 1})`;
  }
  return label;
}
