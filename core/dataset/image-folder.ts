import type { DatasetSpec } from '../config/run-spec';
import type { ListedObject } from '../storage/object-store';
import { quoted, shown, shownList } from '../util/text';
import { seededSplit } from './split';
import {
  DatasetError,
  type DatasetItem,
  SPLITS,
  type SkippedObject,
  hasImageExtension,
  isSplit,
  normalizeClassName,
} from './types';

/** Why an object with a `.` or `..` path segment is left out (see hasDotSegment in ./types). */
export const DOT_SEGMENT_REASON = 'a "." or ".." path segment in the key';

/**
 * Reads an ImageFolder listing: `<prefix>/<split>/<class>/<file>` (splits train, val, test) or
 * `<prefix>/<class>/<file>` with a seeded split. Pure: the listing comes in, items come out.
 */
export function readImageFolder(
  listing: readonly ListedObject[],
  bucket: string,
  prefix: string,
  spec: DatasetSpec,
): { items: DatasetItem[]; skipped: SkippedObject[]; layout: 'split-folders' | 'class-folders' } {
  const where = `s3://${bucket}/${shown(prefix)}`;
  const files = listing.filter((o) => !o.key.endsWith('/')); // folder markers are not objects
  if (files.length === 0) {
    throw new DatasetError(
      `Dataset ${where} is empty: no objects under this prefix. Check the URI (it should end at the ` +
        `folder that holds the class or split folders) and that the images were uploaded.`,
    );
  }
  const skipped: SkippedObject[] = [];
  const seenKeys = new Set<string>();
  const rel = files.flatMap((o) => {
    const parts = o.key.slice(prefix.length).split('/');
    const uri = `s3://${bucket}/${o.key}`;
    // A store that cannot spell a key in its listing (control characters) may list two as one.
    const reason = seenKeys.has(o.key)
      ? 'listed twice'
      : parts.some((p) => p === '.' || p === '..')
        ? DOT_SEGMENT_REASON
        : undefined;
    seenKeys.add(o.key);
    if (reason) skipped.push({ uri, reason });
    return reason ? [] : [{ o, uri, parts }];
  });
  const layout =
    spec.layout === 'auto'
      ? detectLayout(
          rel.map((r) => r.parts),
          where,
        )
      : spec.layout;
  const depth = layout === 'split-folders' ? 3 : 2;

  const items: DatasetItem[] = [];
  const classesSeen = new Map<string, { images: number; others: number }>();
  for (const { o, uri, parts } of rel) {
    if (parts.length !== depth || parts.some((p) => p === '')) {
      skipped.push({
        uri,
        reason: `not at ${layout === 'split-folders' ? 'split/class/file' : 'class/file'} depth`,
      });
      continue;
    }
    const [splitName, folderName] =
      layout === 'split-folders' ? [parts[0]!, parts[1]!] : [undefined, parts[0]!];
    const className = normalizeClassName(folderName);
    if (splitName !== undefined && !isSplit(splitName)) {
      throw new DatasetError(
        `Dataset ${where}: unknown split folder ${quoted(splitName)}. Split folders must be named ${SPLITS.join(', ')}; ` +
          `rename it, or set dataset.layout: class-folders if the top-level folders are classes.`,
      );
    }
    const stats = classesSeen.get(className) ?? { images: 0, others: 0 };
    classesSeen.set(className, stats);
    if (!hasImageExtension(o.key)) {
      stats.others++;
      skipped.push({ uri, reason: 'not an image file extension' });
      continue;
    }
    stats.images++;
    items.push({
      uri,
      size: o.size,
      etag: o.etag,
      className,
      split: splitName ?? seededSplit(uri, spec.splitSeed, spec.splitRatio),
    });
  }
  const empty = [...classesSeen].filter(([, s]) => s.images === 0).map(([c]) => c);
  if (empty.length > 0) {
    throw new DatasetError(
      `Dataset ${where}: class folder(s) with no images: ${shownList(empty)}. ` +
        `Add images (${['.jpg', '.png', '...'].join(' ')}) or remove the folder(s).`,
    );
  }
  return { items, skipped, layout };
}

function detectLayout(paths: string[][], where: string): 'split-folders' | 'class-folders' {
  const top = new Set(paths.filter((p) => p.length > 1).map((p) => p[0]!));
  const splitNamed = [...top].filter(isSplit);
  if (splitNamed.length === 0) return 'class-folders';
  const others = [...top].filter((t) => !isSplit(t));
  if (others.length > 0) {
    throw new DatasetError(
      `Dataset ${where}: top-level folders mix split names (${splitNamed.join(', ')}) with unknown split ` +
        `name(s) ${others
          .slice(0, 10)
          .map((o) => quoted(o, 100))
          .join(', ')}. Split folders must be ${SPLITS.join(', ')}; ` +
        `or set dataset.layout explicitly.`,
    );
  }
  return 'split-folders';
}
