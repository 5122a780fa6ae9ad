/**
 * @file A WebDataset's own text files: classnames.txt (line i names label i) and
 * zeroshot_classification_templates.txt (one prompt template a line, each with `{c}`), as
 * CLIP_benchmark ships them.
 */
import { ObjectTooLargeError, type ObjectStore } from '../../storage/object-store';
import { quoted, shown, shownList } from '../../util/text';
import { DatasetError, normalizeClassName } from '../types';

/** classnames.txt of 100,000 classes is a few MB; more than this is not a class list. */
const MAX_CLASSNAMES_BYTES = 64 * 1024 * 1024;
const MAX_TEMPLATES_BYTES = 1024 * 1024;

/** The file's non-empty-trailing lines, each trimmed (CRLF and a byte-order mark allowed). */
async function readLines(data: ObjectStore, key: string, maxBytes: number): Promise<string[]> {
  const text = await data.requireText(key, { maxBytes }).catch((err: unknown) => {
    if (!(err instanceof ObjectTooLargeError)) throw err;
    throw new DatasetError(
      `${shown(data.uri(key))} is over ${maxBytes} bytes: not a ${key.endsWith('classnames.txt') ? 'class list' : 'template list'}. Check the file.`,
    );
  });
  const lines = text
    .replace(/^\ufeff/, '')
    .split('\n')
    .map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Class names by label id; empty or repeated names are errors (ids would be ambiguous). */
export async function readClassNames(data: ObjectStore, key: string): Promise<string[]> {
  const uri = shown(data.uri(key));
  const names = await readLines(data, key, MAX_CLASSNAMES_BYTES);
  if (names.length === 0) {
    throw new DatasetError(
      `${uri} is empty: it should name one class per line (line i = label i).`,
    );
  }
  const empty = names.flatMap((n, i) => (n === '' ? [`line ${i + 1}`] : []));
  if (empty.length > 0) {
    throw new DatasetError(
      `${uri} has empty line(s) (${shownList(empty)}): line i names label i, so every label needs a name. Fill them in.`,
    );
  }
  const firstLine = new Map<string, number>();
  const twice: string[] = [];
  names.forEach((n, i) => {
    const k = normalizeClassName(n);
    const first = firstLine.get(k);
    if (first === undefined) firstLine.set(k, i + 1);
    else twice.push(`${quoted(n, 60)} (lines ${first} and ${i + 1})`);
  });
  if (twice.length > 0) {
    throw new DatasetError(
      `${uri} names a class more than once: ${twice.slice(0, 10).join(', ')}${twice.length > 10 ? ` and ${twice.length - 10} more` : ''}. ` +
        `Each label needs its own name (NFC and NFD spellings are one name): make them distinct.`,
    );
  }
  return names;
}

/** Prompt templates; each must have `{c}` where the class name goes. */
export async function readTemplates(data: ObjectStore, key: string): Promise<string[]> {
  const uri = shown(data.uri(key));
  const lines = await readLines(data, key, MAX_TEMPLATES_BYTES);
  const templates = lines.filter((l) => l !== '');
  const bad = lines.flatMap((l, i) => (l !== '' && !l.includes('{c}') ? [`line ${i + 1}`] : []));
  if (bad.length > 0) {
    throw new DatasetError(
      `${uri}: template(s) without {c} (${shownList(bad)}): each template must have {c} where the class name goes. Fix or remove those lines.`,
    );
  }
  if (templates.length === 0) {
    throw new DatasetError(
      `${uri} holds no templates. Add one per line (e.g. "a photo of a {c}.") or delete the file.`,
    );
  }
  return templates;
}
