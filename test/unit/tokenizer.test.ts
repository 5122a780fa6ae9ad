import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../core/model/text/tokenizer';

// Expected ids come from HF CLIPTokenizer (transformers 5.23.0, tokenizers 0.23.3): the golden
// files, and for the focused cases `tokenizer(text, truncation=True, max_length=77)` in .venv.
const FIXTURES = join(__dirname, '..', 'fixtures');
const BUNDLE = join(FIXTURES, 'tiny-clip');
const GOLDEN = join(FIXTURES, 'tiny-clip-golden');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

const BOS = 49406;
const EOS = 49407;

let tok: ClipTokenizer;
beforeAll(async () => {
  const { tokenizer: t } = readJson<{
    tokenizer: { vocab: string; merges: string; contextLength: number } & Record<
      'bosTokenId' | 'eosTokenId' | 'padTokenId',
      number
    >;
  }>(join(BUNDLE, 'bundle.json'));
  tok = await ClipTokenizer.load({
    ...t,
    vocabPath: join(BUNDLE, t.vocab),
    mergesPath: join(BUNDLE, t.merges),
  });
});

/** Compares every case and reports the first few mismatches with both id lists. */
function expectAllEqual(cases: readonly { text: string; ids: number[] }[], got: number[][]) {
  const bad = cases.flatMap((c, i) =>
    JSON.stringify(got[i]) === JSON.stringify(c.ids) ? [] : [{ ...c, got: got[i] }],
  );
  const report = bad
    .slice(0, 5)
    .map(
      (b) =>
        `${JSON.stringify(b.text)}\n  HF:   [${b.ids.join(', ')}]\n  ours: [${b.got?.join(', ')}]`,
    )
    .join('\n');
  expect(bad.length, `${bad.length} of ${cases.length} differ; first ones:\n${report}`).toBe(0);
}

describe('ClipTokenizer against HF golden ids', () => {
  it('encodes all 1,230 golden strings exactly', () => {
    const golden = readJson<{ text: string; ids: number[] }[]>(join(GOLDEN, 'tokens.json'));
    expect(golden).toHaveLength(1230);
    expectAllEqual(
      golden,
      golden.map((g) => tok.encode(g.text)),
    );
  });

  it("pads the text-embedding goldens to 77 with the end token (pad: 'max')", () => {
    const golden = readJson<{ text: string; ids: number[] }[]>(
      join(GOLDEN, 'text-embeddings.json'),
    );
    const { ids, shape, eotIndex } = tok.encodeBatch(
      golden.map((g) => g.text),
      { pad: 'max' },
    );
    expect(shape).toEqual([golden.length, 77]);
    const rows = golden.map((_, i) => Array.from(ids.subarray(i * 77, (i + 1) * 77), Number));
    expectAllEqual(golden, rows);
    expect(Array.from(eotIndex)).toEqual(golden.map((g) => g.ids.indexOf(EOS)));
  });
});

describe('ClipTokenizer traps (ids from the HF reference)', () => {
  it.each([
    // Oniguruma's \s: U+0085 is whitespace, U+FEFF and U+001C..U+001F are not.
    ['a\u0085b', [320, 321]],
    ['a\ufeffb', [320, 171, 119, 379, 321]],
    ['a\u001cb\u001dc\u001ed\u001ff', [320, 472, 321, 473, 322, 474, 323, 475, 325]],
    // Lowercasing is per character: 'İ' becomes 'i' + U+0307, 'Σ' is never final 'ς'.
    ['İstanbul', [328, 16384, 11231]],
    ['ΣΑΣ ΟΔΟΣ', [139, 225, 138, 109, 139, 481, 138, 123, 138, 112, 138, 123, 139, 481]],
    ['οδος', [138, 123, 138, 112, 138, 123, 139, 480]],
    ['\u212a', [330]], // Kelvin sign
    // NFC, with the reference's Unicode 9 tables: later marks neither reorder nor compose.
    ['e\u0301', [4166]],
    ['é', [4166]],
    ['\u1100\u1161\u11a8', [21122, 479]],
    ['a\u0316\u1dfa', [320, 136, 244, 157, 115, 374]],
    ['a\u1dfa\u0301', [320, 157, 115, 118, 136, 479]],
    ['\u{105d2}\u0307', [172, 238, 245, 496, 16384]],
    // Letters and digits new in Unicode 17 are "other" characters to the reference.
    ['a\u{10940}b', [320, 172, 238, 98, 478, 321]],
    ['a\u{11de0}b 1\u{11de0}', [320, 172, 239, 115, 510, 321, 272, 172, 239, 115, 510]],
    // \p{N} digits one by one, including non-ASCII ones.
    ['x² ½ ٣٤', [343, 41175, 33613, 149, 352, 149, 353]],
    // Emoji: surrogate pairs, ZWJ sequences, skin tones and flags go through UTF-8 bytes.
    ['👨\u200d👩\u200d👧 👍🏽 🇫🇷', [25023, 26304, 964, 356, 43722, 16223]],
    // Contractions only after lowercasing; a curly apostrophe is not one.
    ["IT'S they'RE", [585, 568, 889, 982]],
    ['it\u2019s', [585, 728, 503, 338]],
    // No ftfy / HTML unescape in HF's pipeline.
    ['&amp; &lt;', [261, 6259, 282, 261, 3333, 282]],
    // Special tokens in the raw text are their ids; other casings are split as ByteLevel does.
    ['<|startoftext|>hi<|endoftext|>', [BOS, 1883, EOS]],
    ['x<|endoftext|>!', [343, EOS, 256]],
    ['<|ENDOFTEXT|>!', [27, 347, 40786, 4160, 91, 285, 256]],
    ['', []],
  ] as [string, number[]][])('%j', (text, inner) => {
    expect(tok.encode(text)).toEqual([BOS, ...inner, EOS]);
  });

  it('truncates long words and long texts to 77, keeping the end token', () => {
    expect(tok.encode('ab'.repeat(300))).toEqual([BOS, ...Array<number>(75).fill(596), EOS]);
    const cjk = tok.encode('中文字符测试日本語のテキスト'.repeat(20));
    expect(cjk).toHaveLength(77);
    expect(cjk.slice(0, 8)).toEqual([BOS, 19759, 255, 29032, 229, 35751, 245, 163]);
    expect(cjk.slice(-3)).toEqual([32421, 230, EOS]);
  });

  it('encodes a lone surrogate like U+FFFD (the reference rejects such strings)', () => {
    expect(tok.encode('hello \ud83d')).toEqual([BOS, 3306, 39802, EOS]);
  });

  it('pads a batch to the longest row by default', () => {
    const { ids, shape, eotIndex } = tok.encodeBatch(['a photo of a dog.', 'a']);
    expect(shape).toEqual([2, 8]);
    expect(Array.from(ids, Number)).toEqual([
      ...[BOS, 320, 1125, 539, 320, 1929, 269, EOS],
      ...[BOS, 320, EOS, EOS, EOS, EOS, EOS, EOS],
    ]);
    expect(Array.from(eotIndex)).toEqual([7, 2]);
  });
});
