/**
 * keepalived.conf lexer: finds where a comment starts, where a line must be split at a
 * brace, and splits one line into tokens (quotes removed, escapes resolved, `{`/`}` as
 * their own tokens). It works on a `SourceLine`, which remembers the column every
 * character came from, so tokens keep exact positions even after `$NAME` substitution.
 */
import type { Token } from "./ast.ts";
import type { SourcePos } from "./diagnostics.ts";

/**
 * A line of text being preprocessed. All characters share `file` and `line`; the
 * column of character i is `cols[i]` when `cols` is set, else `colBase + i`.
 * Substituted text carries explicit columns (those of the `$NAME` reference).
 */
export interface SourceLine {
  text: string;
  file: string;
  line: number;
  cols: number[] | null;
  colBase: number;
}

/** A problem the lexer found, at a position in the line. */
export interface LexError {
  pos: SourcePos;
  message: string;
  expected?: string;
}

/** Makes a `SourceLine` for raw file text that starts at column `col` (1-based). */
export function rawLine(text: string, file: string, line: number, col = 1): SourceLine {
  return { text, file, line, cols: null, colBase: col };
}

/** The 1-based column of character `i` of `l` (the end column when i == length). */
export function colAt(l: SourceLine, i: number): number {
  if (l.cols === null) return l.colBase + i;
  if (i < l.cols.length) return l.cols[i];
  return l.cols.length > 0 ? l.cols[l.cols.length - 1] + 1 : l.colBase;
}

/** The position of character `i` of `l`. */
export function posAt(l: SourceLine, i: number): SourcePos {
  return { file: l.file, line: l.line, col: colAt(l, i) };
}

/** The characters [start, end) of `l`, keeping their columns. */
export function sliceLine(l: SourceLine, start: number, end = l.text.length): SourceLine {
  if (start === 0 && end === l.text.length) return l;
  if (l.cols === null) {
    return { text: l.text.slice(start, end), file: l.file, line: l.line, cols: null, colBase: l.colBase + start };
  }
  return { text: l.text.slice(start, end), file: l.file, line: l.line, cols: l.cols.slice(start, end), colBase: l.colBase };
}

/** True for the characters keepalived treats as blanks between words. */
export function isBlank(c: string): boolean {
  return c === " " || c === "\t" || c === "\f" || c === "\v" || c === "\r" || c === "\n";
}

/** Result of `stripComment`: the content range and whether it ended with a continuation `\`. */
export interface Stripped {
  /** The line without comment and without leading/trailing blanks. */
  line: SourceLine;
  /** True when the content ends with `\` (a multi-line definition continues). */
  continued: boolean;
}

/**
 * Removes a `#` or `!` comment (outside quotes; `\#` and `\!` do not start one) and the
 * leading and trailing blanks, like keepalived's decomment(). An unterminated quote runs
 * to the end of the line (the tokenizer reports it).
 */
export function stripComment(l: SourceLine): Stripped {
  const t = l.text;
  let quote = "";
  let end = t.length;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (quote) {
      if (c === quote) quote = "";
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "#" || c === "!") {
      end = i;
      break;
    }
  }
  let start = 0;
  while (start < end && isBlank(t[start])) start++;
  while (end > start && isBlank(t[end - 1])) end--;
  // Like keepalived, any content ending in a backslash continues a multi-line definition.
  return { line: sliceLine(l, start, end), continued: end > start && t[end - 1] === "\\" };
}

/**
 * Index of the first `{` or `}` outside quotes, or -1. keepalived ends a logical line
 * there: text before a brace, the brace, and text after it are separate lines.
 */
export function findBrace(text: string): number {
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (quote) {
      if (c === quote) quote = "";
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "{" || c === "}") return i;
  }
  return -1;
}

function isOctal(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "7";
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9A-Fa-f]$/.test(c);
}

const simpleEscapes: Record<string, string> = {
  a: "\x07", b: "\b", E: "\x1b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v",
};

/**
 * Decodes the escape starting after a backslash at `t[i]` inside quotes; returns the
 * character produced and the index after the escape. `\xXX` (1-2 hex digits), `\nnn`
 * (1-3 octal digits), `\cC` (control C), `\a \b \E \f \n \r \t \v`; `\C` is C itself.
 */
export function decodeEscape(t: string, i: number): { ch: string; next: number } {
  const c = t[i];
  if (c === "x" && isHex(t[i + 1])) {
    let v = 0;
    let j = i + 1;
    for (let k = 0; k < 2 && isHex(t[j]); k++, j++) v = (v << 4) | parseInt(t[j], 16);
    return { ch: String.fromCharCode(v), next: j };
  }
  if (c === "c" && i + 1 < t.length) {
    return { ch: String.fromCharCode(t.charCodeAt(i + 1) & 0x1f), next: i + 2 };
  }
  if (isOctal(c)) {
    let v = 0;
    let j = i;
    for (let k = 0; k < 3 && isOctal(t[j]); k++, j++) v = (v << 3) + (t.charCodeAt(j) - 48);
    return { ch: String.fromCharCode(v & 0xff), next: j };
  }
  return { ch: simpleEscapes[c] ?? c, next: i + 1 };
}

/**
 * Splits a line into tokens. Blanks separate words; `#`/`!` outside quotes end the line;
 * `"..."` and `'...'` quote (escapes resolved inside), and quoted and unquoted pieces
 * that touch form one word; outside quotes `\#`, `\!`, `\"`, `\'`, `\{`, `\}` are those
 * literal characters (other backslashes stay as written); unquoted `{` and
 * `}` are tokens of their own even when touching a word. A token's position is that of
 * its first source character (the opening quote when it starts quoted).
 */
export function tokenize(l: SourceLine): { tokens: Token[]; errors: LexError[] } {
  const t = l.text;
  const n = t.length;
  const tokens: Token[] = [];
  const errors: LexError[] = [];
  let i = 0;
  outer: while (i < n) {
    while (i < n && isBlank(t[i])) i++;
    if (i >= n) break;
    const c = t[i];
    if (c === "#" || c === "!") break;
    if (c === "{" || c === "}") {
      tokens.push({ text: c, pos: posAt(l, i), quoted: false });
      i++;
      continue;
    }
    const start = i;
    let text = "";
    let quoted = false;
    while (i < n) {
      const ch = t[i];
      if (ch === '"' || ch === "'") {
        quoted = true;
        const open = i;
        i++;
        let closed = false;
        while (i < n) {
          const q = t[i];
          if (q === ch) {
            closed = true;
            i++;
            break;
          }
          if (q === "\\" && i + 1 < n) {
            const e = decodeEscape(t, i + 1);
            text += e.ch;
            i = e.next;
            continue;
          }
          text += q;
          i++;
        }
        if (!closed) {
          errors.push({ pos: posAt(l, open), message: `unterminated quoted string`, expected: `a closing ${ch}` });
          tokens.push({ text, pos: posAt(l, start), quoted });
          break outer;
        }
        continue;
      }
      if (isBlank(ch) || ch === "{" || ch === "}" || ch === "#" || ch === "!") break;
      if (ch === "\\" && i + 1 < n) {
        // Outside quotes a backslash protects the next character from being a comment,
        // quote or brace (as stripComment/findBrace assume) and is dropped only then.
        const nx = t[i + 1];
        text += '#!"\'{}'.includes(nx) ? nx : ch + nx;
        i += 2;
        continue;
      }
      text += ch;
      i++;
    }
    tokens.push({ text, pos: posAt(l, start), quoted });
  }
  return { tokens, errors };
}

/** Tokenizes plain text given as line `line` of `file` (a convenience for tests and tools). */
export function tokenizeText(text: string, file = "<text>", line = 1): { tokens: Token[]; errors: LexError[] } {
  return tokenize(rawLine(text, file, line));
}
