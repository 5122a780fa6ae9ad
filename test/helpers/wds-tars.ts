/**
 * @file Tars for WebDataset tests and benches: written by tar-stream's pack (ustar, pax for what
 * ustar cannot hold) or by Python's tarfile (GNU and pax formats), and read back by tar-stream's
 * extract as the oracle the hand-written walker (core/dataset/webdataset/tar-index.ts) is held to.
 */
import { pack, extract } from 'tar-stream';
import { runPythonJson } from './python';

export interface TarFile {
  name: string;
  data: Uint8Array | string;
}

/** A tar of `files` in order, by tar-stream's pack. */
export async function packTar(files: readonly TarFile[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const f of files) {
    await new Promise<void>((resolve, reject) =>
      p.entry({ name: f.name }, Buffer.from(f.data), (err) => (err ? reject(err) : resolve())),
    );
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/**
 * A tar of `files` by Python's tarfile in `format` (directories too, as paths ending in '/');
 * a PAX tar starts with a global ('g') header.
 */
export function pythonTar(files: readonly TarFile[], format: 'GNU' | 'PAX'): Buffer {
  const script = `
import io, json, sys, tarfile, base64
files = json.load(sys.stdin)
buf = io.BytesIO()
# PAX: a global header ('g') too, as some writers add one first.
extra = {'pax_headers': {'comment': 'global'}} if '${format}' == 'PAX' else {}
with tarfile.open(fileobj=buf, mode='w', format=tarfile.${format}_FORMAT, **extra) as t:
    for f in files:
        info = tarfile.TarInfo(f['name'].rstrip('/'))
        if f['name'].endswith('/'):
            info.type = tarfile.DIRTYPE
            t.addfile(info)
            continue
        data = base64.b64decode(f['data'])
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
print(json.dumps(base64.b64encode(buf.getvalue()).decode()))
`;
  const input = files.map((f) => ({
    name: f.name,
    data: Buffer.from(f.data).toString('base64'),
  }));
  return Buffer.from(runPythonJson(script, input) as string, 'base64');
}

export interface ExtractedMember {
  name: string;
  /** Where the data starts: tar-stream's header offset + 512. */
  offset: number;
  data: Buffer;
}

/** Every regular file of a tar, by tar-stream's extract. */
export async function extractTar(tar: Uint8Array): Promise<ExtractedMember[]> {
  const ex = extract();
  const out: ExtractedMember[] = [];
  const reading = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
        out.push({
          name: entry.header.name,
          offset: entry.offset + 512,
          data: Buffer.concat(chunks),
        });
      }
    }
  })();
  ex.end(Buffer.from(tar));
  await reading;
  return out;
}

/** One WebDataset sample: its key, its image (extension and bytes) and its .cls text. */
export interface WdsSample {
  key: string;
  ext?: string;
  image?: Uint8Array | string;
  cls?: string;
}

/** The tar members of samples, as webdataset's TarWriter orders them (image, then .cls). */
export function sampleFiles(samples: readonly WdsSample[]): TarFile[] {
  return samples.flatMap((s) => [
    ...(s.image !== undefined ? [{ name: `${s.key}.${s.ext ?? 'jpg'}`, data: s.image }] : []),
    ...(s.cls !== undefined ? [{ name: `${s.key}.cls`, data: s.cls }] : []),
  ]);
}
