import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BundleError, loadBundle } from '../../core/model/bundle';
import { preprocessFingerprint } from '../../core/embeddings/shard-key';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import { tokenizerForBundle } from '../../core/model/text/tokenizer';
import { TINY_BUNDLE } from '../helpers/fixtures';

// Issue 15, item 5: bundle.json records the model family, the tokenizer flavour (and HF added
// tokens) and the resize size. The committed tiny bundle predates them: it must load as before,
// with the same embedding-space fingerprint, so its stored embeddings stay reusable.

type Json = Record<string, unknown> & {
  tokenizer: Record<string, unknown>;
  preprocessing: Record<string, unknown>;
};
const tinyManifest = () =>
  JSON.parse(readFileSync(join(TINY_BUNDLE, 'bundle.json'), 'utf8')) as Json;

/** A copy of the tiny bundle with bundle.json edited. */
function variant(edit: (m: Json) => void): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'clipeval-bundle-family-')), 'bundle');
  cpSync(TINY_BUNDLE, dir, { recursive: true });
  const m = tinyManifest();
  edit(m);
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(m));
  return dir;
}

describe('bundle families and tokenizer flavours', () => {
  it('loads a bundle from before the fields as hf-clip, with the fingerprint it had', async () => {
    const old = await loadBundle(TINY_BUNDLE);
    expect(tinyManifest()).not.toHaveProperty('family');
    expect(old.manifest.family).toBe('hf-clip');
    expect(old.manifest.tokenizer.flavour).toBe('hf-clip');
    expect(old.manifest.preprocessing).toEqual(tinyManifest().preprocessing);
    // The fingerprint hashes the parsed preprocessing: unchanged by the new optional fields.
    expect(preprocessFingerprint(old.manifest.preprocessing)).toBe(
      preprocessFingerprint(tinyManifest().preprocessing as never),
    );
  });

  it('reads an open-clip bundle: family, flavour, pad 0, and its tokenizer', async () => {
    const dir = variant((m) => {
      m.family = 'open-clip';
      Object.assign(m.tokenizer, { flavour: 'open-clip', padTokenId: 0 });
      m.preprocessing.resizeSize = 224;
      m.preprocessing.cropRounding = 'half-even';
    });
    const b = await loadBundle(dir);
    expect(b.manifest.family).toBe('open-clip');
    expect(b.manifest.preprocessing.cropRounding).toBe('half-even');
    // Another crop, another embedding space: the fingerprint names the rounding.
    expect(preprocessFingerprint(b.manifest.preprocessing)).not.toBe(
      preprocessFingerprint({ ...b.manifest.preprocessing, cropRounding: undefined }),
    );
    const tok = await tokenizerForBundle(b);
    expect(tok.encode('&amp;')).toEqual([49406, 261, 49407]); // '&' after HTML unescaping
    expect(Array.from(tok.encodeBatch(['a b', 'a']).ids, Number).slice(4)).toEqual([
      49406, 320, 49407, 0,
    ]);
  });

  it('passes HF added tokens to the tokenizer', async () => {
    const dir = variant((m) => {
      Object.assign(m.tokenizer, { padTokenId: 0, addedTokens: [{ content: '!', id: 0 }] });
    });
    const tok = await tokenizerForBundle(await loadBundle(dir));
    expect(tok.encode('hi!')).toEqual([49406, 1883, 0, 49407]);
  });

  it.each([
    ['an unknown family', (m: Json) => (m.family = 'timm')],
    ['an unknown tokenizer flavour', (m: Json) => (m.tokenizer.flavour = 'sentencepiece')],
    ['a resize other than the crop', (m: Json) => (m.preprocessing.resizeSize = 256)],
    ['a zero std', (m: Json) => (m.preprocessing.std = [0, 1, 1])],
    ['an unknown crop rounding', (m: Json) => (m.preprocessing.cropRounding = 'ceil')],
  ])('refuses %s with a BundleError', async (_, edit) => {
    await expect(loadBundle(variant(edit))).rejects.toThrow(BundleError);
  });
});

describe('graph choice on an open-clip bundle', () => {
  it('says to re-export an open-clip bundle exported without an fp16 image graph', async () => {
    const dir = variant((m) => {
      m.family = 'open-clip';
      const image = (m.graphs as { image: { variants: Record<string, unknown> } }).image;
      delete image.variants.fp16;
    });
    await expect(ImageEncoder.create(await loadBundle(dir), { precision: 'fp16' })).rejects.toThrow(
      /no fp16 image graph: re-export it with infra\/exporter\/export.py/,
    );
  });
});
