/**
 * @file User strings (S3 keys, labels, folder names) shown to people: in error messages, the
 * CLI's output and logs. They may hold anything S3 allows: line breaks of every kind, terminal
 * escape codes, bidi overrides. These helpers show such characters as visible `\u{..}` escapes,
 * so a key can neither rewrite a terminal nor forge a line of output, and they cut very long
 * values short so one huge key does not bury a message.
 */

/**
 * Characters never shown raw: C0 controls (line feed and tab included), DEL, C1 controls (U+0085
 * NEL, U+009B CSI...), the line and paragraph separators, the bidi embeddings, overrides,
 * isolates and marks, and the byte-order mark.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** `\u{1b}` for ESC, `\u{2028}` for LINE SEPARATOR... */
const escapeChar = (c: string): string => `\\u{${c.codePointAt(0)!.toString(16)}}`;

/**
 * `s` with every unsafe character shown as a `\u{..}` escape, except those in `keep` (the CLI
 * keeps the line feeds and tabs its own multi-line messages are laid out with).
 */
export function escapeControls(s: string, keep: string = ''): string {
  return s.replace(UNSAFE, (c) => (keep.includes(c) ? c : escapeChar(c)));
}

/** A user string for a message, unquoted: unsafe characters escaped, cut after `max`. */
export function shown(s: string, max = 200): string {
  if (s.length <= max) return escapeControls(s);
  // Never cut a surrogate pair in half.
  const end = /[\ud800-\udbff]/.test(s.charAt(max - 1)) ? max - 1 : max;
  return `${escapeControls(s.slice(0, end))}… (${s.length} characters)`;
}

/** A user string quoted for a message: `"…"`, unsafe characters escaped (line feeds too). */
export function quoted(s: string, max = 200): string {
  if (s.length <= max) return `"${escapeControls(s)}"`;
  const end = /[\ud800-\udbff]/.test(s.charAt(max - 1)) ? max - 1 : max;
  return `"${escapeControls(s.slice(0, end))}…" (${s.length} characters)`;
}

/** Up to `max` user strings for a message, comma-separated, and how many more there are. */
export function shownList(items: readonly string[], max = 10): string {
  const more = items.length > max ? ` and ${items.length - max} more` : '';
  return (
    items
      .slice(0, max)
      .map((s) => shown(s, 100))
      .join(', ') + more
  );
}
