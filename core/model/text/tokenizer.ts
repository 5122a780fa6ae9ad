/**
 * @file CLIP's byte-level BPE tokenizer, id for id identical to Hugging Face `CLIPTokenizer` in
 * transformers 5.23 (the `tokenizers`-backed one, tokenizers 0.23), as pinned by
 * test/fixtures/tiny-clip-golden/tokens.json. Its pipeline, in order:
 *
 * 1. the special tokens `<|startoftext|>` / `<|endoftext|>` are cut out of the raw text first
 *    (case-sensitive, before normalisation) and become their ids;
 * 2. each remaining segment is normalised: NFC, whitespace runs to one space, lowercase;
 * 3. pre-tokenised with CLIP's regex (whitespace dropped), then with ByteLevel's GPT-2 regex;
 * 4. each piece's UTF-8 bytes are mapped to GPT-2's byte characters and BPE-merged, the last
 *    symbol carrying the `</w>` end-of-word suffix;
 * 5. truncated to contextLength - 2 tokens and wrapped in the start and end tokens.
 *
 * HF's tokenizer has no ftfy `fix_text` or HTML-unescape step (OpenAI's original clip.py does),
 * so neither does this one: `&amp;` is tokenised as the five characters it is.
 */
import { readFile } from 'node:fs/promises';
import { bundleFile, type ModelBundle, type TokenizerFlavour } from '../bundle';
import { mergeSymbols } from './bpe';
import { openClipClean } from './open-clip-clean';

export interface TokenizerFiles {
  vocabPath: string;
  mergesPath: string;
  contextLength: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  /** Added tokens cut out of the raw text besides the start and end tokens (hf-clip only). */
  addedTokens?: readonly { content: string; id: number }[];
  /** hf-clip (default): HF CLIPTokenizer; open-clip: OpenCLIP's SimpleTokenizer (./open-clip-clean.ts). */
  flavour?: TokenizerFlavour;
}

const SOT = '<|startoftext|>';
const EOT = '<|endoftext|>';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The raw-text tokens HF cuts out before normalising, as one capturing regex (split() then
 * alternates text and token) and their ids. Longest first, so that at one position the longest
 * token wins (HF's matcher is leftmost-longest).
 */
function specialSplit(files: TokenizerFiles): { split: RegExp; ids: Map<string, number> } {
  const ids = new Map<string, number>([
    [SOT, files.bosTokenId],
    [EOT, files.eosTokenId],
  ]);
  for (const t of files.addedTokens ?? []) ids.set(t.content, t.id);
  const alternatives = [...ids.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  return { split: new RegExp(`(${alternatives.join('|')})`, 'u'), ids };
}

// The reference's regexes run on Oniguruma, whose `\s` and Unicode tables differ from V8's:
// - `\s`: Oniguruma includes U+0085 (NEL) and excludes U+FEFF (BOM); JS's `\s` is the opposite.
//   (Both exclude U+001C..U+001F.) So whitespace is spelled out.
const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
// - Letters and digits new in Unicode 17 (Node 20.20's ICU) are unassigned in the reference's
//   Unicode 16 tables, so there they are neither \p{L} nor \p{N} but "other" characters.
const NEW_IN_U17 =
  '[\\u{088F}\\u{0C5C}\\u{0CDC}\\u{A7CE}-\\u{A7CF}\\u{A7D2}\\u{A7D4}\\u{A7F1}\\u{10940}-\\u{10959}' +
  '\\u{10EC5}-\\u{10EC7}\\u{11DB0}-\\u{11DDB}\\u{11DE0}-\\u{11DE9}\\u{16EA0}-\\u{16EB8}' +
  '\\u{16EBB}-\\u{16ED3}\\u{16FF2}-\\u{16FF6}\\u{187F8}-\\u{187FF}\\u{18D09}-\\u{18D1E}' +
  '\\u{18D80}-\\u{18DF2}\\u{1E6C0}-\\u{1E6DE}\\u{1E6E0}-\\u{1E6E2}\\u{1E6E4}-\\u{1E6E5}' +
  '\\u{1E6E7}-\\u{1E6ED}\\u{1E6F0}-\\u{1E6F4}\\u{1E6FE}-\\u{1E6FF}\\u{2B73A}-\\u{2B73F}' +
  '\\u{2CEA2}-\\u{2CEAD}\\u{323B0}-\\u{33479}]';
const L = `(?:(?!${NEW_IN_U17})\\p{L})`;
const N = `(?:(?!${NEW_IN_U17})\\p{N})`;
const OTHER = `(?:${NEW_IN_U17}|[^${WS}\\p{L}\\p{N}])`;

// - NFC: tokenizers normalises with the unicode-normalization-alignments 0.1.12 crate, whose
//   tables are Unicode 9.0. The characters below got a combining class or a composition later;
//   to the reference they are plain starters that neither reorder nor compose, so ICU's NFC runs
//   only on the text between them.
/* eslint-disable no-misleading-character-class -- a set of lone combining marks, on purpose */
const NFC_RUN = new RegExp(
  '[^\\u{07FD}\\u{0897}-\\u{089F}\\u{08CA}-\\u{08D3}\\u{09FE}\\u{0C3C}\\u{0D3B}-\\u{0D3C}\\u{0EBA}' +
    '\\u{1715}\\u{1ABF}-\\u{1ADD}\\u{1AE0}-\\u{1AEB}\\u{1DF6}-\\u{1DFA}\\u{A82C}\\u{105C9}\\u{105D2}' +
    '\\u{105DA}\\u{105E4}\\u{10D24}-\\u{10D27}\\u{10D69}-\\u{10D6D}\\u{10EAB}-\\u{10EAC}' +
    '\\u{10EFA}-\\u{10EFB}\\u{10EFD}-\\u{10EFF}\\u{10F46}-\\u{10F50}\\u{10F82}-\\u{10F85}\\u{11070}' +
    '\\u{1133B}\\u{11382}-\\u{11385}\\u{1138B}\\u{1138E}\\u{11390}-\\u{11391}\\u{113C2}\\u{113C5}' +
    '\\u{113C7}-\\u{113C8}\\u{113CE}-\\u{113D0}\\u{1145E}\\u{11839}-\\u{1183A}\\u{11935}\\u{11938}' +
    '\\u{1193D}-\\u{1193E}\\u{11943}\\u{119E0}\\u{11A34}\\u{11A47}\\u{11A99}\\u{11D42}' +
    '\\u{11D44}-\\u{11D45}\\u{11D97}\\u{11F41}-\\u{11F42}\\u{1611E}\\u{16121}-\\u{16129}\\u{1612F}' +
    '\\u{16D63}\\u{16D67}-\\u{16D6A}\\u{16FF0}-\\u{16FF1}\\u{1E08F}\\u{1E130}-\\u{1E136}\\u{1E2AE}' +
    '\\u{1E2EC}-\\u{1E2EF}\\u{1E4EC}-\\u{1E4EF}\\u{1E5EE}-\\u{1E5EF}\\u{1E6E3}\\u{1E6E6}' +
    '\\u{1E6EE}-\\u{1E6EF}\\u{1E6F5}]+',
  'gu',
);
/* eslint-enable no-misleading-character-class */
const nfc = (text: string): string => text.replace(NFC_RUN, (run) => run.normalize('NFC'));

const WHITESPACE_RUN = new RegExp(`[${WS}]+`, 'gu');
/** CLIP's pattern; what it does not match (whitespace) is dropped. */
const CLIP_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|${L}+|${N}|${OTHER}+`,
  'gu',
);
/**
 * ByteLevel's GPT-2 pattern (its `use_regex` defaults to true), applied to each CLIP piece.
 * Pieces hold no whitespace, so its space and whitespace alternatives are left out. It only
 * changes anything for special-token text that step 1 did not catch (e.g. `<|ENDOFTEXT|>`,
 * lowercased): that splits into `<|`, `endoftext`, `|>`.
 */
const GPT2_PATTERN = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d|${L}+|${N}+|${OTHER}+`, 'gu');

/**
 * OpenCLIP's word pattern (run with Python's `regex`, IGNORECASE, on cleaned, lowercased text):
 * its own special tokens, contractions, letter runs, single digits, runs of anything else.
 */
const OPEN_CLIP_PATTERN = new RegExp(
  `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|${L}+|${N}|(?:${NEW_IN_U17}|[^\\s\\p{L}\\p{N}])+`,
  'giu',
);

/**
 * Rust's lowercase works char by char, so 'Σ' is always 'σ'; JS's toLowerCase applies the
 * Final_Sigma rule ('ς' at a word's end), its only context-dependent mapping. Every per-char
 * mapping (e.g. 'İ' to 'i̇') agrees between the two.
 */
const normalize = (text: string): string =>
  nfc(text).replace(WHITESPACE_RUN, ' ').replaceAll('Σ', 'σ').toLowerCase();

/** GPT-2's reversible map from bytes to printable characters, so BPE works on strings. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    table.push(String.fromCharCode(printable ? b : next++));
  }
  return table;
})();

const BPE_CACHE_LIMIT = 100_000;

export class ClipTokenizer {
  /** BPE results by word: prompts repeat the same words over and over. */
  private readonly cache = new Map<string, number[]>();
  private readonly special: { split: RegExp; ids: Map<string, number> };
  /** With added tokens besides <|...|> the text is always split; else only when it has '<|'. */
  private readonly alwaysSplit: boolean;

  private constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    /** Merge rank by pair, keyed as the line in merges.txt: "left right". */
    private readonly ranks: ReadonlyMap<string, number>,
    private readonly files: TokenizerFiles,
  ) {
    this.special = specialSplit(files);
    this.alwaysSplit = (files.addedTokens ?? []).length > 0;
  }

  static async load(files: TokenizerFiles): Promise<ClipTokenizer> {
    const vocabJson = JSON.parse(await readFile(files.vocabPath, 'utf8')) as unknown;
    if (typeof vocabJson !== 'object' || vocabJson === null || Array.isArray(vocabJson)) {
      throw new Error(`${files.vocabPath}: expected a JSON object of token -> id`);
    }
    const vocab = new Map(Object.entries(vocabJson as Record<string, number>));
    const ranks = new Map<string, number>();
    const lines = (await readFile(files.mergesPath, 'utf8')).split('\n');
    for (const [i, line] of lines.entries()) {
      if ((i === 0 && line.startsWith('#version')) || line === '') continue;
      if (line.split(' ').length !== 2) {
        throw new Error(
          `${files.mergesPath}:${i + 1}: expected "left right", got ${JSON.stringify(line)}`,
        );
      }
      ranks.set(line, ranks.size);
    }
    if (vocab.get(SOT) !== files.bosTokenId || vocab.get(EOT) !== files.eosTokenId) {
      throw new Error(
        `${files.vocabPath}: ${SOT} / ${EOT} are not ids ${files.bosTokenId} / ${files.eosTokenId}`,
      );
    }
    if (files.contextLength < 2) throw new Error(`contextLength ${files.contextLength} is below 2`);
    return new ClipTokenizer(vocab, ranks, files);
  }

  /** Token ids with start and end tokens, truncated to contextLength keeping the end token. */
  encode(text: string): number[] {
    const { bosTokenId, eosTokenId, contextLength } = this.files;
    const max = contextLength - 2;
    if (this.files.flavour === 'open-clip') return this.encodeOpenClip(text, max);
    const ids: number[] = [];
    // split() with a capture group alternates: text, special, text, special, ...
    const segments =
      this.alwaysSplit || text.includes('<|') ? text.split(this.special.split) : [text];
    segments.forEach((segment, i) => {
      if (ids.length >= max) return;
      if (i % 2 === 1) {
        ids.push(this.special.ids.get(segment)!);
        return;
      }
      // match() rather than matchAll(): matchAll compiles a copy of the regex on every call.
      for (const piece of normalize(segment).match(CLIP_PATTERN) ?? []) {
        for (const word of piece.match(GPT2_PATTERN) ?? []) {
          for (const id of this.bpe(word)) ids.push(id); // a word can have thousands of ids
        }
        if (ids.length >= max) return; // the rest would be truncated anyway
      }
    });
    return [bosTokenId, ...ids.slice(0, max), eosTokenId];
  }

  /**
   * OpenCLIP's SimpleTokenizer: clean (ftfy, HTML, whitespace, lowercase), split with its pattern
   * (whose `<start_of_text>` / `<end_of_text>` are its special tokens; HF's `<|...|>` are plain
   * text there), BPE, then the same truncation as open_clip.tokenize (start, 75 ids, end).
   */
  private encodeOpenClip(text: string, max: number): number[] {
    const { bosTokenId, eosTokenId } = this.files;
    const ids: number[] = [];
    for (const word of openClipClean(text).match(OPEN_CLIP_PATTERN) ?? []) {
      if (word === '<start_of_text>') ids.push(bosTokenId);
      else if (word === '<end_of_text>') ids.push(eosTokenId);
      else for (const id of this.bpe(word)) ids.push(id);
      if (ids.length >= max) break;
    }
    return [bosTokenId, ...ids.slice(0, max), eosTokenId];
  }

  /**
   * A padded batch for the text encoder: ids as BigInt64Array [n, length] (length = longest, or
   * contextLength with pad: 'max'), padded with padTokenId, plus each row's end-token index (the
   * appended one, i.e. its last real position).
   */
  encodeBatch(
    texts: readonly string[],
    opts: { pad?: 'longest' | 'max' } = {},
  ): { ids: BigInt64Array; shape: [number, number]; eotIndex: Int32Array } {
    const rows = texts.map((t) => this.encode(t));
    const length =
      opts.pad === 'max'
        ? this.files.contextLength
        : rows.reduce((longest, row) => Math.max(longest, row.length), 0);
    const ids = new BigInt64Array(rows.length * length).fill(BigInt(this.files.padTokenId));
    const eotIndex = new Int32Array(rows.length);
    rows.forEach((row, i) => {
      ids.set(row.map(BigInt), i * length);
      eotIndex[i] = row.length - 1;
    });
    return { ids, shape: [rows.length, length], eotIndex };
  }

  /** Byte-level BPE of one pre-tokenised word, cached. */
  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const bytes = Array.from(Buffer.from(word, 'utf8'), (b) => BYTE_TO_CHAR[b] as string);
    bytes[bytes.length - 1] += '</w>';
    const symbols = mergeSymbols(bytes, (left, right) => this.ranks.get(`${left} ${right}`));
    // Every byte symbol is in the vocabulary, so the unknown token (= end token) never shows up.
    const ids = symbols.map((s) => this.vocab.get(s) ?? this.files.eosTokenId);
    if (this.cache.size < BPE_CACHE_LIMIT) this.cache.set(word, ids);
    return ids;
  }
}

/** The tokenizer a bundle ships (its vocab.json and merges.txt). */
export function tokenizerForBundle(bundle: ModelBundle): Promise<ClipTokenizer> {
  const t = bundle.manifest.tokenizer;
  return ClipTokenizer.load({
    ...t,
    vocabPath: bundleFile(bundle, t.vocab),
    mergesPath: bundleFile(bundle, t.merges),
  });
}
