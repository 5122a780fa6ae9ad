import { spawnSync } from 'node:child_process';
import { VENV_PYTHON } from './python';

/**
 * One Parquet file as Hugging Face `datasets` writes it (written by pyarrow): an `image` struct
 * column {bytes, path}, an int64 `label` column, the `huggingface` key-value metadata, row groups
 * of `rowGroupSize` rows. Options make the bad variants the tests need.
 */
export interface ParquetFixture {
  /** Path of the file under the output folder. */
  path: string;
  /** Each row's label (null: a null label). */
  labels: (number | null)[];
  /** Row i's image bytes are imageBytes(tag, i). */
  tag: string;
  rowGroupSize?: number;
  compression?: 'snappy' | 'zstd' | 'gzip' | 'none';
  /** How the image column is stored; `none` leaves it out. */
  image?: 'struct' | 'binary' | 'string' | 'none';
  /** How the label column is stored; `none` leaves it out. */
  label?: 'int64' | 'int32' | 'string' | 'none';
  /** ClassLabel names written into the `huggingface` metadata (omitted: no such metadata). */
  hfNames?: string[];
  /** Rows whose image is null (the whole struct). */
  nullImages?: number[];
  /** Write an empty row group after this many rows. */
  emptyRowGroupAfter?: number;
  /** Bytes of each image (repeats of its tag); default about 400. */
  imageRepeat?: number;
  /** Real image files instead (base64), one per row. */
  images?: string[];
  /** A `captions` column: list<string> (lists) or string (one caption a row); null rows allowed. */
  captions?: (string[] | string | null)[];
  captionType?: 'list' | 'string';
}

/** The image bytes fixture row `row` of `tag` holds. */
export function imageBytes(tag: string, row: number, repeat = 40): Buffer {
  return Buffer.from(`${tag}:${row};`.repeat(repeat));
}

const SCRIPT = String.raw`
import json, sys, os, base64
import pyarrow as pa, pyarrow.parquet as pq
spec = json.load(sys.stdin)
for f in spec['files']:
    n = len(f['labels'])
    rep = f.get('imageRepeat') or 40
    given = f.get('images')
    imgs = [None if i in (f.get('nullImages') or []) else
            (base64.b64decode(given[i]) if given else ('%s:%d;' % (f['tag'], i) * rep).encode()) for i in range(n)]
    cols = {}
    kind = f.get('image') or 'struct'
    if kind == 'struct':
        cols['image'] = pa.array([None if b is None else {'bytes': b, 'path': 'img%d.png' % i} for i, b in enumerate(imgs)],
                                 pa.struct([('bytes', pa.binary()), ('path', pa.string())]))
    elif kind == 'binary':
        cols['image'] = pa.array(imgs, pa.binary())
    elif kind == 'string':
        cols['image'] = pa.array(['images/%d.png' % i for i in range(n)], pa.string())
    lk = f.get('label') or 'int64'
    if lk in ('int64', 'int32'):
        cols['label'] = pa.array(f['labels'], getattr(pa, lk)())
    elif lk == 'string':
        cols['label'] = pa.array([None if l is None else str(l) for l in f['labels']], pa.string())
    if f.get('captions') is not None:
        ct = pa.list_(pa.string()) if (f.get('captionType') or 'list') == 'list' else pa.string()
        cols['captions'] = pa.array(f['captions'], ct)
    table = pa.table(cols)
    if f.get('hfNames') is not None:
        info = {'info': {'features': {'image': {'_type': 'Image'},
                                      'label': {'names': f['hfNames'], '_type': 'ClassLabel'}}}}
        table = table.replace_schema_metadata({'huggingface': json.dumps(info)})
    path = os.path.join(spec['dir'], f['path'])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    comp = f.get('compression') or 'snappy'
    w = pq.ParquetWriter(path, table.schema, compression=comp)
    size = f.get('rowGroupSize') or 4
    empty_after = f.get('emptyRowGroupAfter')
    start = 0
    while start < n:
        end = min(n, start + size)
        if empty_after is not None and start < empty_after <= end:
            w.write_table(table.slice(start, empty_after - start))
            w.write_table(table.slice(0, 0))
            if end > empty_after:
                w.write_table(table.slice(empty_after, end - empty_after))
        else:
            w.write_table(table.slice(start, end - start))
        start = end
    w.close()
print(json.dumps({'ok': True}))
`;

/** Writes the files under `dir` with pyarrow (the project venv's Python). */
export function writeParquetFixtures(dir: string, files: ParquetFixture[]): void {
  const r = spawnSync(VENV_PYTHON, ['-c', SCRIPT], {
    input: JSON.stringify({ dir, files }),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`writing Parquet fixtures failed (${r.status}): ${r.stderr}`);
}
