/**
 * Text from stored files or from another node, made safe to print on a terminal: every control
 * character is written as an escape, so no ANSI sequence (ESC, or the one-byte CSI U+009B) reaches
 * the terminal, and no newline, carriage return or tab can forge a line or a column. The invisible
 * characters that reorder or break lines (bidi overrides and isolates, U+2028/U+2029) and lone
 * surrogates are escaped too. Everything else, non-ASCII letters included, is left as it is.
 *
 * The escapes are for safety, not for reading the text back: a backslash is left alone, so the
 * stored text `a\nb` (four characters) and `a<newline>b` print alike. `--json` output keeps
 * JSON's own escaping, plus `jsonForTerminal` when it goes to a terminal.
 */

// C0 controls, DEL, C1 controls, Arabic letter mark, LRM/RLM, LS/PS, bidi embeddings/overrides,
// bidi isolates, BOM, and any UTF-16 surrogate (a paired one is matched as a pair below and kept).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g;

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(ch: string): string {
  if (ch.length === 2) return ch; // a well-formed surrogate pair: an ordinary astral character
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const unit = ch.charCodeAt(0);
  return unit < 0x80 ? `\\x${unit.toString(16).padStart(2, "0")}` : `\\u${unit.toString(16).padStart(4, "0")}`;
}

export interface PrintableOptions {
  /** keep at most this many characters of the input; the rest is counted, not shown */
  max?: number;
}

/** The text with every unsafe character escaped (see the module comment), cut to `max`. */
export function printable(value: unknown, opts: PrintableOptions = {}): string {
  let text = typeof value === "string" ? value : String(value);
  let cut = "";
  const max = opts.max;
  if (max !== undefined && text.length > max) {
    // never split a surrogate pair: the half left over would be escaped as garbage
    const end = max > 0 && /[\ud800-\udbff]/.test(text.charAt(max - 1)) ? max - 1 : max;
    cut = `... (${text.length - end} more characters)`;
    text = text.slice(0, end);
  }
  return text.replace(UNSAFE, escapeOne) + cut;
}

// What JSON leaves raw inside strings but a terminal acts on or reorders (JSON escapes C0 itself).
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/**
 * JSON text for a terminal: the characters of the module comment that JSON leaves raw inside
 * strings are written as \uXXXX escapes instead. The document means exactly the same to a JSON
 * reader; only where a person reads it are its bytes changed.
 */
export function jsonForTerminal(json: string): string {
  return json.replace(RAW_IN_JSON, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
