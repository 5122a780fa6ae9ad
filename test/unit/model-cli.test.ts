import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cosine } from '../../core/util/vectors';
import { goldenImages, goldenTexts, TINY_BUNDLE, TINY_GOLDEN } from '../helpers/fixtures';

// `clipeval tokenize` and `clipeval embed` as users script them, on the tiny bundle.
function clipeval(args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      join('node_modules', '.bin', 'tsx'),
      [join('cli', 'main.ts'), ...args],
      { encoding: 'utf8', env: { ...process.env, CLIPEVAL_BUCKET: 'unused' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('clipeval model CLI', () => {
  it('tokenize --json prints the HF token ids', async () => {
    const g = goldenTexts()[0]!;
    const r = await clipeval(['tokenize', '--bundle', TINY_BUNDLE, '--json', g.text]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { text: g.text, ids: g.ids.slice(0, g.ids.indexOf(49407) + 1) },
    ]);
  });

  it('embed text and embed image --json match the HF embeddings', async () => {
    const t = goldenTexts().slice(0, 2);
    const text = await clipeval([
      'embed',
      'text',
      '--bundle',
      TINY_BUNDLE,
      '--json',
      ...t.map((x) => x.text),
    ]);
    expect(text.code).toBe(0);
    const rows = JSON.parse(text.stdout) as { text: string; embedding: number[] }[];
    rows.forEach((row, i) =>
      expect(cosine(row.embedding, t[i]!.embedding)).toBeGreaterThan(0.99999),
    );

    const img = goldenImages()[0]!;
    const image = await clipeval([
      'embed',
      'image',
      '--bundle',
      TINY_BUNDLE,
      '--json',
      join(TINY_GOLDEN, img.file),
    ]);
    expect(image.code).toBe(0);
    const [e] = JSON.parse(image.stdout) as { embedding: number[] }[];
    expect(cosine(e!.embedding, img.embedding)).toBeGreaterThan(0.999);
  });

  it('exits 2 with a clear message for a folder that is not a bundle', async () => {
    const r = await clipeval(['tokenize', '--bundle', TINY_GOLDEN, 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a model bundle: bundle\.json is missing/);
  });
});
