/**
 * @file OpenCLIP's text clean-up before BPE (`SimpleTokenizer`, clean='lower', open_clip 3.3.0):
 * `ftfy.fix_text`, `html.unescape` twice, strip, whitespace runs to one space, lowercase. Then
 * OpenCLIP's regex splits it into words (./tokenizer.ts does the BPE, as for HF's flavour).
 *
 * ftfy is ported step by step with its own tables (./open-clip-tables.ts, generated from the
 * installed ftfy and Python), except `fix_encoding`: the mojibake repair (text that was UTF-8
 * decoded as Windows-1252, e.g. "cafÃ©" -> "café") is heuristic and not ported, so such text
 * tokenises as written. Every other step is: HTML entities (ftfy's semicolon-terminated ones,
 * when the text has no '<'), C1 controls as Windows-1252, Latin ligatures, full/half width,
 * curly quotes, terminal escapes, control characters, NFC; repeated until nothing changes, per
 * line, as ftfy does.
 */
import {
  FTFY_CHAR_MAP,
  FTFY_CONTROL_CHARS,
  FTFY_EXTRA_ENTITIES,
  HTML5_ENTITIES,
  INVALID_CHARREFS,
  INVALID_CODEPOINTS,
  PY_SPACES,
} from './open-clip-tables';

const escapeClass = (chars: string) =>
  [...chars].map((c) => `\\u{${c.codePointAt(0)!.toString(16)}}`).join('');

const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;
const ANSI = /\x1b\[((?:\d|;)*)([a-zA-Z])/g; // eslint-disable-line no-control-regex
const CONTROL = new RegExp(`[${escapeClass(FTFY_CONTROL_CHARS)}]`, 'gu');
const MAPPED = new RegExp(`[${escapeClass(Object.keys(FTFY_CHAR_MAP).join(''))}]`, 'gu');
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\u0085]/g;
const PY_SPACE_RUN = new RegExp(`[${escapeClass(PY_SPACES)}]+`, 'gu');
const has = (table: Readonly<Record<string, string>>, key: string) =>
  Object.prototype.hasOwnProperty.call(table, key);

/** Python's html.unescape. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, (_, s: string) => {
    if (s.startsWith('#')) {
      const hex = s[1] === 'x' || s[1] === 'X';
      const num = parseInt(s.slice(hex ? 2 : 1).replace(/;$/, ''), hex ? 16 : 10);
      if (has(INVALID_CHARREFS, String(num))) return INVALID_CHARREFS[String(num)]!;
      if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\uFFFD';
      if (INVALID_CODEPOINTS.has(num)) return '';
      return String.fromCodePoint(num);
    }
    if (has(HTML5_ENTITIES, s)) return HTML5_ENTITIES[s]!;
    // Longest known prefix (entities such as "&amp" are valid without the semicolon).
    for (let x = s.length - 1; x > 1; x--)
      if (has(HTML5_ENTITIES, s.slice(0, x))) return HTML5_ENTITIES[s.slice(0, x)]! + s.slice(x);
    return `&${s}`;
  });
}

/** ftfy's unescape_html: known semicolon-terminated entities (and all-caps Latin ones). */
function ftfyUnescape(text: string): string {
  return text.replace(FTFY_ENTITY, (m) => {
    if (has(FTFY_EXTRA_ENTITIES, m)) return FTFY_EXTRA_ENTITIES[m]!;
    if (has(HTML5_ENTITIES, m.slice(1))) return HTML5_ENTITIES[m.slice(1)]!;
    if (m.startsWith('&#')) {
      const out = htmlUnescape(m);
      return out.includes(';') ? m : out;
    }
    return m;
  });
}

/** ftfy's fix_and_explain on one segment, without fix_encoding. */
function fixSegment(segment: string, unescape: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescape) text = ftfyUnescape(text);
    text = text.replace(MAPPED, (c) => FTFY_CHAR_MAP[c]!);
    text = text.replace(LINE_BREAKS, '\n');
    text = text.replace(LONE_SURROGATE, '\uFFFD');
    text = text.replace(ANSI, '');
    text = text.replace(CONTROL, '');
    text = text.normalize('NFC');
    if (text === before) return text;
  }
}

/** ftfy.fix_text with its default config: line by line; one '<' turns HTML unescaping off from there on. */
export function ftfyFixText(text: string): string {
  let unescape = true;
  const out: string[] = [];
  for (let pos = 0; pos < text.length;) {
    const end = text.indexOf('\n', pos) + 1 || text.length;
    const segment = text.slice(pos, end);
    if (segment.includes('<')) unescape = false;
    out.push(fixSegment(segment, unescape));
    pos = end;
  }
  return out.join('');
}

/** Python's str.strip() and " ".join(s.split()): runs of str.isspace() characters to one space. */
const pyWhitespaceClean = (text: string) => text.replace(PY_SPACE_RUN, ' ').replace(/^ | $/g, '');

/** SimpleTokenizer's _clean_lower: whitespace_clean(basic_clean(text)).lower(). */
export function openClipClean(text: string): string {
  const basic = htmlUnescape(htmlUnescape(ftfyFixText(text)));
  return pyWhitespaceClean(basic).toLowerCase();
}
