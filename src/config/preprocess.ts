/**
 * keepalived.conf preprocessor: reads the main file and its includes and yields logical
 * lines of tokens after conditional lines (`@ID`), parameters (`$NAME=VALUE`, `$NAME`,
 * `${NAME}`), sequences/lists (`~SEQ`, `~SEQx`, `~LST`) and brace splitting, the way
 * keepalived's lib/parser.c read_line() does.
 *
 * Position conventions (every token carries file:line:col, 1-based):
 * - text read from a file keeps its own line and column;
 * - text produced by a `$NAME`/`${NAME}` reference takes the position of the `$` of the
 *   reference written in the source line (nested references inherit it);
 * - every line of a multi-line definition is reported at the `$NAME` reference that
 *   expanded it;
 * - lines repeated by `~SEQ`/`~LST` keep the columns of the text after the `~SEQ(...)`
 *   on the ~SEQ line; the `$var` there takes the position of its `$`.
 * Columns count UTF-16 code units; a tab counts as one column.
 *
 * Deliberate differences from keepalived 2.4.3: `'...'` quotes hide comments and braces
 * as `"..."` do; a substituted line is re-checked for `@`, definitions and `~SEQ`
 * (keepalived's documented behaviour, lost by a 2025 refactor); include lines may use
 * `@ID` and parameters; include cycles and runaway substitution are errors, not hangs.
 */
import * as nodePath from "node:path";
import type { Token } from "./ast.ts";
import { Diagnostics, type SourcePos } from "./diagnostics.ts";
import { findBrace, isBlank, posAt, rawLine, sliceLine, stripComment, tokenize, type SourceLine } from "./lexer.ts";
import { prngUint32 as makeRandom } from "../prng.ts";

/** What the preprocessor needs from the outside world (files, identity, randomness). */
export interface PreprocessHost {
  /** The config-id `@ID` lines are compared with, and the value of `${_INSTANCE}`. */
  configId: string;
  /** Environment for `${_ENV VAR}`. */
  env: Record<string, string | undefined>;
  /** Seed for `${_RANDOM}`. */
  randomSeed: number;
  /** Reads a whole file; throws on failure (an error with `code: "ENOTREG"` means not a regular non-executable file). */
  readFile(path: string): string;
  /** Matches a brace-free glob pattern relative to `cwd`; directories end in `/`; sorted. */
  glob(pattern: string, cwd: string): string[];
}

/** include_check bits (keepalived INCLUDE_R/M/W/B). */
export const INCLUDE_READ = 1;
export const INCLUDE_MATCH = 2;
export const INCLUDE_WILDCARD = 4;
export const INCLUDE_BRACE = 8;
const INCLUDE_ALL = INCLUDE_READ | INCLUDE_MATCH | INCLUDE_WILDCARD | INCLUDE_BRACE;

/** Limits that turn runaway input into errors instead of hangs. */
const MAX_SUBSTITUTIONS_PER_LINE = 2_000;
/** Longest line accepted, raw or after substitution (keepalived itself stops at 1023 bytes). */
const MAX_LINE_LENGTH = 1 << 12; // keepalived stops at 1023; brace splitting is quadratic in line length
const MAX_RECHECK_ROUNDS = 1_000;
const MAX_SEQ_ITERATIONS = 100_000;
const MAX_GENERATED_LINES = 200_000; // a 1,000-instance config is ~30,000 lines
const MAX_INCLUDE_DEPTH = 64;
const MAX_BRACE_ALTERNATIVES = 10_000;

interface Definition {
  name: string;
  /** Single-line value (for multi-line definitions, unused). */
  value: string;
  /** Lines of a multi-line definition, else null. */
  lines: string[] | null;
  /** Computes the value of a predefined parameter; null result = empty. */
  fn?: (params: string[], pos: SourcePos) => string | null;
  minParams: number;
  maxParams: number;
  numbersOnly: boolean;
}

interface FileSource {
  kind: "file";
  path: string;
  dir: string;
  lines: string[];
  next: number;
  /** include_check to restore when this file ends. */
  savedCheck: number;
}
interface GlobSource {
  kind: "glob";
  pattern: string;
  matches: string[];
  next: number;
  includeType: number;
  savedCheck: number;
  dir: string;
  pos: SourcePos;
  opened: number;
  isMain: boolean;
}
interface MultilineSource {
  kind: "multi";
  /** The parameter being expanded (a definition that refers to itself is refused). */
  name: string;
  lines: string[];
  next: number;
  pos: SourcePos;
}
interface SeqSource {
  kind: "seq";
  name: string;
  value: number;
  step: number;
  last: number;
  hex: boolean;
  text: SourceLine;
}
interface LstSource {
  kind: "lst";
  names: string[];
  sets: string[][];
  next: number;
  text: SourceLine;
}
type Source = FileSource | GlobSource | MultilineSource | SeqSource | LstSource;

/** Everything the preprocessor produced. */
export interface PreprocessResult {
  /** Logical lines: each is either words or a single `{`/`}` token. */
  lines: Token[][];
  diagnostics: Diagnostics;
  /** Files read, in the order they were opened. */
  files: string[];
  /** True when the main configuration file could not be opened (keepalived exits 6). */
  missingMain: boolean;
}

/** A C-like strtol with base 0 (0x hex, leading-0 octal, else decimal). */
function strtol(s: string, i: number): { value: number; end: number } {
  const start = i;
  while (i < s.length && isBlank(s[i])) i++;
  let sign = 1;
  if (s[i] === "+" || s[i] === "-") {
    if (s[i] === "-") sign = -1;
    i++;
  }
  let base = 10;
  if (s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X") && /[0-9a-fA-F]/.test(s[i + 2] ?? "")) {
    base = 16;
    i += 2;
  } else if (s[i] === "0") base = 8;
  const digits = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/;
  const d0 = i;
  let v = 0;
  while (i < s.length && digits.test(s[i])) {
    v = Math.min(v * base + parseInt(s[i], base), Number.MAX_SAFE_INTEGER);
    i++;
  }
  if (i === d0) return { value: 0, end: start };
  return { value: sign * v, end: i };
}

const isNameStart = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);
const isNameChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);
const isSpaceTab = (c: string | undefined): boolean => c === " " || c === "\t";

/** True when a glob pattern has an unescaped `*`, `?` or `[`. */
export function hasGlobMagic(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") i++;
    else if (c === "*" || c === "?" || c === "[") return true;
  }
  return false;
}

/** True when a pattern has an unescaped `{` (keepalived's have_brace()). */
export function hasBrace(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === "\\") i++;
    else if (pattern[i] === "{") return true;
  }
  return false;
}

/**
 * Expands csh-style braces (`a{b,c{d,e}}f` → abf, acdf, acef) like glibc GLOB_BRACE;
 * an unmatched `{` is literal. Returns at most MAX_BRACE_ALTERNATIVES patterns.
 */
export function expandBraces(pattern: string): string[] {
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === "\\") i++;
    else if (pattern[i] === "{") {
      open = i;
      break;
    }
  }
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  let close = -1;
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") i++;
    else if (c === "{") depth++;
    else if (c === "}") {
      if (--depth === 0) {
        close = i;
        break;
      }
    } else if (c === "," && depth === 1) commas.push(i);
  }
  const prefix = pattern.slice(0, open);
  if (close < 0) {
    // Unmatched: the brace is literal; later braces may still expand.
    return expandBraces(pattern.slice(open + 1)).map((rest) => prefix + "{" + rest);
  }
  const bounds = [open, ...commas, close];
  const suffixes = expandBraces(pattern.slice(close + 1));
  const out: string[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    for (const alt of expandBraces(pattern.slice(bounds[k] + 1, bounds[k + 1]))) {
      for (const suf of suffixes) {
        out.push(prefix + alt + suf);
        if (out.length >= MAX_BRACE_ALTERNATIVES) return out;
      }
    }
  }
  return out;
}

/** Removes glob backslash escapes. */
function unescapeGlob(s: string): string {
  return s.replace(/\\(.)/g, "$1");
}


/** Turns keepalived.conf files into logical token lines, one call to `next()` at a time. */
export class Preprocessor {
  readonly diagnostics = new Diagnostics();
  readonly files: string[] = [];
  missingMain = false;

  private readonly host: PreprocessHost;
  private readonly stack: Source[] = [];
  private readonly defs = new Map<string, Definition>();
  private residue: SourceLine | null = null;
  private pendingDef: Definition | null = null;
  private includeCheck = 0;
  private generated = 0;
  private generationStopped = false;
  private random: () => number;
  /** Keywords of the open blocks, for recognising `include_check` in global_defs. */
  private readonly blocks: (string | null)[] = [];
  private lastKeyword: string | null = null;
  private readonly mainDir: string;

  /**
   * Starts on `mainPath`; when `mainText` is given it is the main file's content and
   * `mainPath` only names it (includes are relative to its directory).
   */
  constructor(mainPath: string, host: PreprocessHost, mainText?: string) {
    this.host = host;
    this.random = makeRandom(host.randomSeed);
    this.mainDir = nodePath.dirname(nodePath.resolve(mainPath));
    this.defineStandard();
    if (mainText !== undefined) {
      this.files.push(mainPath);
      this.stack.push(this.fileSource(mainPath, mainText, 0));
    } else {
      const pos = { file: mainPath, line: 1, col: 1 };
      this.startInclude(mainPath, INCLUDE_READ | INCLUDE_MATCH | INCLUDE_WILDCARD, pos, true);
      if (this.stack.length === 0) this.mainMissing(pos);
    }
  }

  /** The next logical line (words, or one brace token), or null at the end of input. */
  next(): Token[] | null {
    for (;;) {
      let buf: SourceLine;
      if (this.residue) {
        buf = this.residue;
        this.residue = null;
      } else {
        const got = this.nextSourceLine();
        if (got === null) {
          this.endPendingDef();
          return null;
        }
        if (got === "blank") {
          this.endPendingDef();
          continue;
        }
        buf = got;
        if (buf.text.length === 0) continue;
        if (this.pendingDef) {
          this.addDefLine(buf);
          continue;
        }
      }
      const line = this.processLine(buf);
      if (line === null || line.text.length === 0) continue;
      if (this.tryInclude(line)) continue;

      const piece = this.splitAtBrace(line);
      const { tokens, errors } = tokenize(piece);
      for (const e of errors) this.diagnostics.error(e.pos, e.message, e.expected);
      if (tokens.length === 0) continue;
      this.trackBlocks(tokens);
      return tokens;
    }
  }

  /** Runs to the end and returns every logical line. */
  all(): PreprocessResult {
    const lines: Token[][] = [];
    for (let l = this.next(); l !== null; l = this.next()) lines.push(l);
    return { lines, diagnostics: this.diagnostics, files: this.files, missingMain: this.missingMain };
  }

  // ---- sources -------------------------------------------------------------------

  private fileSource(path: string, text: string, savedCheck: number): FileSource {
    return { kind: "file", path, dir: nodePath.dirname(nodePath.resolve(path)), lines: text.split("\n"), next: 0, savedCheck };
  }

  private currentDir(): string {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const s = this.stack[i];
      if (s.kind === "file") return s.dir;
    }
    return this.mainDir;
  }

  /**
   * The next line from the innermost source: a decommented file line ("" when it held
   * only a comment), "blank" for an empty raw line, a generated line, or null at the end.
   */
  private nextSourceLine(): SourceLine | "blank" | null {
    while (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1];
      switch (top.kind) {
        case "file": {
          if (top.next >= top.lines.length) {
            this.stack.pop();
            this.includeCheck = top.savedCheck;
            this.endPendingDef();
            continue;
          }
          const n = top.next++;
          let text = top.lines[n];
          if (n === top.lines.length - 1 && text === "") continue; // text after the final newline
          let end = text.length;
          while (end > 0 && (text[end - 1] === "\r" || text[end - 1] === "\n")) end--;
          if (end === 0) return "blank";
          text = text.slice(0, end);
          if (text.length > MAX_LINE_LENGTH) {
            this.diagnostics.error({ file: top.path, line: n + 1, col: 1 }, `line too long (${text.length} characters) - ignoring`, `at most ${MAX_LINE_LENGTH} characters`);
            continue;
          }
          if (text.includes("\0")) {
            this.diagnostics.warning({ file: top.path, line: n + 1, col: text.indexOf("\0") + 1 }, "line contains NUL characters - ignoring line");
            continue;
          }
          return stripComment(rawLine(text, top.path, n + 1)).line;
        }
        case "glob":
          if (!this.openNextGlobFile(top)) {
            this.stack.pop();
            if (top.isMain && top.opened === 0) this.mainMissing(top.pos);
          }
          continue;
        case "multi": {
          if (top.next >= top.lines.length) {
            this.stack.pop();
            continue;
          }
          if (!this.countGenerated(top.pos)) continue;
          const text = top.lines[top.next++];
          return { text, file: top.pos.file, line: top.pos.line, cols: new Array<number>(text.length).fill(top.pos.col), colBase: top.pos.col };
        }
        case "seq": {
          if (!this.countGenerated(posAt(top.text, 0))) continue;
          this.setDefinition(top.name, top.hex ? top.value.toString(16) : String(top.value));
          top.value += top.step;
          if ((top.step > 0 && top.value > top.last) || (top.step < 0 && top.value < top.last)) this.stack.pop();
          return top.text;
        }
        case "lst": {
          if (!this.countGenerated(posAt(top.text, 0))) continue;
          const set = top.sets[top.next++];
          top.names.forEach((name, k) => this.setDefinition(name, set[k] ?? ""));
          if (top.next >= top.sets.length) this.stack.pop();
          return top.text;
        }
      }
    }
    return null;
  }

  /** Counts a generated line; past the limit, drops every pending expansion once. */
  private countGenerated(pos: SourcePos): boolean {
    if (++this.generated <= MAX_GENERATED_LINES) return true;
    if (!this.generationStopped) {
      this.generationStopped = true;
      this.diagnostics.error(pos, `expansion produced more than ${MAX_GENERATED_LINES} lines; further ~SEQ/~LST/multi-line expansion stopped`, "fewer generated lines");
    }
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const k = this.stack[i].kind;
      if (k === "seq" || k === "lst" || k === "multi") this.stack.splice(i, 1);
    }
    return false;
  }

  // ---- line processing (@, $definitions, ~SEQ/~LST, substitution) ----------------

  /** Applies keepalived's per-line processing; null when the line was consumed or dropped. */
  private processLine(start: SourceLine): SourceLine | null {
    let buf = start;
    for (let round = 0; ; round++) {
      if (round >= MAX_RECHECK_ROUNDS) {
        this.diagnostics.error(posAt(start, 0), "parameter substitution does not terminate (the line keeps producing '@' or '$' references)", "definitions that do not refer to themselves");
        return null;
      }
      const t = buf.text;
      if (t[0] === "@") {
        const rev = t[1] === "^";
        const ofs = rev ? 2 : 1;
        let ws = ofs;
        while (ws < t.length && !isSpaceTab(t[ws])) ws++;
        if (ws >= t.length) return null; // nothing after the id
        const matches = t.slice(ofs, ws) === this.host.configId;
        if (matches === rev) return null;
        while (ws < t.length && isSpaceTab(t[ws])) ws++;
        buf = sliceLine(buf, ws);
      }
      if (buf.text[0] === "$" && this.tryDefinition(buf)) return null;
      if (buf.text.startsWith("~SEQ")) {
        this.addSeq(buf);
        return null;
      }
      if (buf.text.startsWith("~LST")) {
        this.addLst(buf);
        return null;
      }
      if (buf.text[0] === "~" || !buf.text.includes("$")) return buf;
      const sub = this.substitute(buf, true);
      if (sub.failed) return null; // reported; a half-substituted line would only add noise
      if (!sub.changed) return sub.line;
      buf = stripComment(sub.line).line;
      if (buf.text.length === 0) return null;
      if (buf.text[0] !== "@" && !buf.text.includes("$")) return buf;
    }
  }

  /** Recognises `$NAME=VALUE` (no blank before `=`); stores it and returns true. */
  private tryDefinition(buf: SourceLine): boolean {
    const t = buf.text;
    if (!isNameStart(t[1])) return false;
    let k = 2;
    while (isNameChar(t[k])) k++;
    if (t[k] !== "=") return false;
    const name = t.slice(1, k);
    k++;
    while (isSpaceTab(t[k])) k++;
    let value = t.slice(k);
    if (value.endsWith("\\")) {
      value = value.slice(0, -1).replace(/[ \t]+$/, "");
      const def = this.setDefinition(name, "");
      def.lines = value.length > 0 ? [value] : [];
      this.pendingDef = def;
    } else {
      this.setDefinition(name, value);
    }
    return true;
  }

  /** Adds one line to the multi-line definition being read. */
  private addDefLine(buf: SourceLine): void {
    const def = this.pendingDef!;
    const lines = def.lines!;
    if (buf.text.endsWith("\\")) {
      const content = buf.text.slice(0, -1).replace(/[ \t]+$/, "");
      if (content.length > 0) lines.push(content);
    } else {
      lines.push(buf.text);
      this.endPendingDef();
    }
  }

  private endPendingDef(): void {
    const def = this.pendingDef;
    if (!def) return;
    this.pendingDef = null;
    if (def.lines && def.lines.length === 0) def.lines = null; // empty: a plain "" value
  }

  private setDefinition(name: string, value: string): Definition {
    const def: Definition = { name, value, lines: null, minParams: 0, maxParams: 0, numbersOnly: false };
    this.defs.set(name, def);
    return def;
  }

  private defineStandard(): void {
    const std = (name: string, fn: Definition["fn"], minParams = 0, maxParams = 0, numbersOnly = false): void => {
      this.defs.set(name, { name, value: "", lines: null, fn, minParams, maxParams, numbersOnly });
    };
    std("_PWD", () => this.currentDir());
    std("_INSTANCE", () => this.host.configId);
    std("_RANDOM", (params, pos) => {
      let min = params.length > 0 ? Number(params[0]) : 0;
      const max0 = params.length > 1 ? Number(params[1]) : 32767;
      let max = max0;
      if (min > max) {
        this.diagnostics.error(pos, `\${_RANDOM}: min ${min} exceeds max ${max}, using ${min}`, "MIN <= MAX");
        max = min;
      }
      min = Math.min(min, Number.MAX_SAFE_INTEGER);
      return String((this.random() % (max - min + 1)) + min);
    }, 0, 2, true);
    std("_ENV", (params) => this.host.env[params[0]] ?? null, 1, 1);
    std("_HASH", () => "#");
    std("_BANG", () => "!");
  }

  /**
   * Matches a parameter reference at `t[i]` (`$NAME` followed by blank, `,`, `)` or end
   * of line, or `${NAME [params]}`); null when it is not a usable reference.
   */
  private matchRef(t: string, i: number, pos: () => SourcePos): { def: Definition; end: number; params: string[] } | null {
    let j = i + 1;
    const braces = t[j] === "{";
    if (braces) j++;
    if (!isNameStart(t[j])) return null;
    let k = j + 1;
    while (isNameChar(t[k])) k++;
    const name = t.slice(j, k);
    let end: number;
    let params: string[] = [];
    if (braces) {
      let p = k;
      while (p < t.length && (isSpaceTab(t[p]) || isNameChar(t[p]))) p++;
      const paramText = t.slice(k, p);
      if (paramText.length > 0 && isSpaceTab(paramText[paramText.length - 1])) return null;
      if (t[p] !== "}") return null;
      params = paramText.split(/[ \t]+/).filter((s) => s.length > 0);
      end = p + 1;
    } else {
      if (k < t.length && !isSpaceTab(t[k]) && t[k] !== "," && t[k] !== ")") return null;
      end = k;
    }
    const def = this.defs.get(name);
    if (!def) return null;
    if (def.lines !== null && end !== t.length) return null; // multi-line only at end of line
    if (params.length > 0) {
      if (def.maxParams === 0) return null;
      if (def.numbersOnly && params.some((s) => !/^[0-9]+$/.test(s))) {
        this.diagnostics.error(pos(), `Definition ${name} requires numeric parameters only.`, "decimal numbers");
        return null;
      }
    }
    if (def.fn && (params.length > def.maxParams || params.length < def.minParams)) {
      this.diagnostics.error(pos(), `Definition ${name} requires between ${def.minParams} and ${def.maxParams} parameters, ${params.length} specified.`, `\${${name}${def.minParams > 0 ? " PARAM" : ""}}`);
      return null;
    }
    return { def, end, params };
  }

  /**
   * Replaces parameter references in `line` like keepalived's replace_param(): scanning
   * resumes at the start of each replacement, so values are substituted recursively.
   * A multi-line definition contributes its first line; the rest is pushed as a source.
   */
  private substitute(line: SourceLine, allowMultiline: boolean): { line: SourceLine; changed: boolean; failed: boolean } {
    let text = line.text;
    if (!text.includes("$")) return { line, changed: false, failed: false };
    let cols: number[] = [];
    for (let i = 0; i < text.length; i++) cols.push(posAt(line, i).col);
    let changed = false;
    let failed = false;
    let count = 0;
    let i = text.indexOf("$");
    while (i >= 0 && i + 1 < text.length) {
      const at = i;
      const ref = this.matchRef(text, i, () => ({ file: line.file, line: line.line, col: cols[at] }));
      if (!ref || (ref.def.lines !== null && !allowMultiline)) {
        i = text.indexOf("$", i + 1);
        continue;
      }
      if (++count > MAX_SUBSTITUTIONS_PER_LINE || text.length > MAX_LINE_LENGTH) {
        this.diagnostics.error({ file: line.file, line: line.line, col: cols[i] }, "parameter substitution recursion limit exceeded", "definitions that do not refer to themselves");
        failed = true;
        break;
      }
      const refCol = cols[i];
      const refPos = { file: line.file, line: line.line, col: refCol };
      let value: string;
      if (ref.def.lines !== null) {
        if (this.stack.some((src) => src.kind === "multi" && src.name === ref.def.name)) {
          this.diagnostics.error(refPos, `multi-line parameter $${ref.def.name} refers to itself; not expanded`, "a definition that does not use its own name");
          failed = true;
          break;
        }
        value = ref.def.lines[0] ?? "";
        if (ref.def.lines.length > 1) this.stack.push({ kind: "multi", name: ref.def.name, lines: ref.def.lines.slice(1), next: 0, pos: refPos });
      } else if (ref.def.fn) {
        value = ref.def.fn(ref.params, refPos) ?? "";
      } else {
        value = ref.def.value;
      }
      text = text.slice(0, i) + value + text.slice(ref.end);
      cols = cols.slice(0, i).concat(new Array<number>(value.length).fill(refCol), cols.slice(ref.end));
      changed = true;
      // A value starting with ~ is a ~SEQ/~LST to run first; its $vars must wait.
      if (value.replace(/^[ \t]+/, "").startsWith("~")) break;
      i = text.indexOf("$", i);
    }
    if (!changed) return { line, changed, failed };
    return { line: { text, file: line.file, line: line.line, cols, colBase: line.colBase }, changed, failed };
  }

  /** Parses `~SEQ(var, [start,] [step,] end) text` / `~SEQx(...)` and pushes the sequence. */
  private addSeq(buf: SourceLine): void {
    const t = buf.text;
    const pos = posAt(buf, 0);
    const expected = "~SEQ(VAR, [START,] [STEP,] END) TEXT";
    const bad = (message: string): void => this.diagnostics.error(pos, message, expected);
    let p = 4;
    const hex = t[p] === "x";
    if (hex) p++;
    while (isSpaceTab(t[p])) p++;
    if (t[p] !== "(") return bad(`Invalid ~SEQ specification '${t}': '(' missing`);
    p++;
    while (isSpaceTab(t[p])) p++;
    const varStart = p;
    while (p < t.length && !isSpaceTab(t[p]) && t[p] !== "," && t[p] !== ")") p++;
    const name = t.slice(varStart, p);
    while (isSpaceTab(t[p])) p++;
    if (p >= t.length || t[p] !== "," || name.length === 0 || name[0] === "{") return bad(`Invalid ~SEQ definition '${t}'`);
    p++;
    const close = t.indexOf(")", p);
    if (close < 0) return bad(`~SEQ missing terminating ')' '${t}'`);
    const sub = this.substitute(sliceLine(buf, p, close + 1), false);
    if (sub.failed) return;
    const args = sub.line.text;
    const nums: number[] = [];
    let q = 0;
    for (;;) {
      const r = strtol(args, q);
      nums.push(r.value);
      q = r.end;
      while (isSpaceTab(args[q])) q++;
      if (args[q] === ")") break;
      if (args[q] !== "," || nums.length === 3) return bad(`Invalid ~SEQ definition '${t}'`);
      q++;
    }
    let start: number, step: number, last: number;
    if (nums.length === 1) {
      last = nums[0];
      step = last < 1 ? -1 : 1;
      start = last < 0 ? -1 : 1;
    } else if (nums.length === 2) {
      [start, last] = nums;
      step = start <= last ? 1 : -1;
    } else {
      [start, step, last] = nums;
      if (step === 0 || (start < last && step < 0) || (start > last && step > 0)) return bad(`Invalid ~SEQ values '${t}'`);
    }
    if (hex && (start < 0 || last < 0)) return bad(`~SEQx is only valid for positive numbers '${t}'`);
    const iterations = Math.floor((last - start) / step) + 1;
    if (iterations > MAX_SEQ_ITERATIONS) return bad(`~SEQ would repeat ${iterations} times (limit ${MAX_SEQ_ITERATIONS}) '${t}'`);
    let r = close + 1;
    while (isSpaceTab(t[r])) r++;
    if (iterations <= 0) return;
    this.stack.push({ kind: "seq", name, value: start, step, last, hex, text: sliceLine(buf, r) });
  }

  /** Parses `~LST(var, v1, v2, ...) text` or `~LST({a,b}, {1,2}, ...) text` and pushes the list. */
  private addLst(buf: SourceLine): void {
    const t = buf.text;
    const pos = posAt(buf, 0);
    const bad = (why: string): void =>
      this.diagnostics.error(pos, `Invalid ~LST specification '${t}'${why ? `: ${why}` : ""}`, "~LST(VAR, V1, V2, ...) TEXT or ~LST({VAR1, VAR2}, {V1, V2}, ...) TEXT");
    const skip = (p: number): number => {
      while (isSpaceTab(t[p])) p++;
      return p;
    };
    let p = skip(4);
    if (t[p] !== "(") return bad("'(' missing");
    p = skip(p + 1);
    let endChar = ",";
    if (t[p] === "{") {
      endChar = "}";
      p = skip(p + 1);
    }
    const names: string[] = [];
    for (;;) {
      const s = p;
      while (p < t.length && !isSpaceTab(t[p]) && t[p] !== "," && t[p] !== "}") p++;
      if (p === s) return bad("empty variable name");
      names.push(t.slice(s, p));
      p = skip(p);
      if (t[p] === endChar) break;
      if (t[p] !== ",") return bad("',' expected after a variable name");
      p = skip(p + 1);
    }
    if (t[p] === "}") p = skip(p + 1);
    if (t[p] !== ",") return bad("no values");
    p = skip(p + 1);
    const sets: string[][] = [];
    for (;;) {
      endChar = ",";
      if (t[p] === "{") {
        endChar = "}";
        p = skip(p + 1);
      }
      const values: string[] = [];
      for (;;) {
        const s = p;
        while (p < t.length && !isSpaceTab(t[p]) && t[p] !== "," && t[p] !== "}" && t[p] !== ")") p++;
        values.push(t.slice(s, p));
        p = skip(p);
        if (t[p] === endChar || (t[p] === ")" && endChar === ",")) break;
        if (t[p] !== ",") return bad(p >= t.length ? "')' missing" : "',' expected between values");
        p = skip(p + 1);
        if (values.length > names.length - 1) return bad("too many values");
      }
      while (values.length < names.length) values.push("");
      sets.push(values);
      if (t[p] === "}" && endChar === "}") p = skip(p + 1);
      if (t[p] === ")") break;
      if (t[p] !== ",") return bad(p >= t.length ? "')' missing" : "',' expected between value sets");
      p = skip(p + 1);
    }
    p = skip(p + 1);
    this.stack.push({ kind: "lst", names, sets, next: 0, text: sliceLine(buf, p) });
  }

  // ---- include --------------------------------------------------------------------

  /** Handles `include`/`include[rmwba] PATTERN`; true when the line was an include. */
  private tryInclude(line: SourceLine): boolean {
    const t = line.text;
    if (!t.startsWith("include")) return false;
    if (t === "include" || (t.length === 8 && "rmwba".includes(t[7]))) {
      this.diagnostics.error(posAt(line, 0), `${t} without a file name`, `${t} FILE`);
      return true;
    }
    if (t.length < 8) return false;
    let type: number;
    let p: number;
    if (isBlank(t[7])) {
      type = 0;
      p = 8;
    } else if ("rmwba".includes(t[7]) && t.length > 8 && isBlank(t[8])) {
      type = { r: INCLUDE_READ, m: INCLUDE_READ | INCLUDE_MATCH, w: INCLUDE_READ | INCLUDE_MATCH | INCLUDE_WILDCARD, b: INCLUDE_READ | INCLUDE_BRACE, a: INCLUDE_ALL }[t[7] as "r"]!;
      p = 9;
    } else return false;
    while (p < t.length && isBlank(t[p])) p++;
    const pattern = t.slice(p);
    const pos = posAt(line, p);
    if (/["']/.test(pattern)) this.diagnostics.warning(posAt(line, p), `include pattern '${pattern}' contains quote characters, which are taken literally`);
    this.startInclude(pattern, type, pos, false);
    return true;
  }

  /** Reports an include problem: an error when its check is enabled, else a warning. */
  private fileProblem(flag: number, checks: number, pos: SourcePos, message: string, expected: string): void {
    if (checks & flag) this.diagnostics.error(pos, message, expected);
    else this.diagnostics.warning(pos, message);
  }

  /** Globs an include pattern (relative to the current file's directory) and pushes its files. */
  private startInclude(pattern: string, type: number, pos: SourcePos, isMain: boolean): void {
    const checks = this.includeCheck | type;
    // The main file is relative to the process's directory, includes to the including file's.
    const dir = isMain ? nodePath.resolve(".") : this.currentDir();
    const matches: string[] = [];
    let missing = 0;
    let wildcards = false;
    for (const alt of expandBraces(pattern)) {
      const magic = hasGlobMagic(alt);
      let found: string[];
      try {
        found = this.host.glob(alt, dir);
      } catch {
        found = [];
      }
      if (magic) wildcards = true;
      if (found.length === 0 && (!magic || !this.globPrefixExists(alt, dir))) missing++;
      for (const f of found) matches.push(f);
    }
    if (matches.length === 0) {
      if (missing > 0) {
        const flag = hasBrace(pattern) ? INCLUDE_BRACE : INCLUDE_MATCH;
        this.fileProblem(flag, checks, pos, `Config files missing '${pattern}'.`, "an existing file");
      } else if (wildcards && checks & INCLUDE_WILDCARD) {
        this.fileProblem(INCLUDE_WILDCARD, checks, pos, `No config files matched '${pattern}'.`, "at least one matching file");
      }
      return;
    }
    if (missing > 0) {
      this.fileProblem(INCLUDE_BRACE, checks, pos, `Some config files missing: "${pattern}".`, "a file for every brace alternative");
      if (checks & INCLUDE_BRACE) return;
    }
    this.stack.push({ kind: "glob", pattern, matches, next: 0, includeType: type, savedCheck: this.includeCheck, dir, pos, opened: 0, isMain });
  }

  /** True when the directory part before the first wildcard of `alt` exists. */
  private globPrefixExists(alt: string, dir: string): boolean {
    let firstMagic = alt.length;
    for (let i = 0; i < alt.length; i++) {
      if (alt[i] === "\\") i++;
      else if (alt[i] === "*" || alt[i] === "?" || alt[i] === "[") {
        firstMagic = i;
        break;
      }
    }
    const slash = alt.lastIndexOf("/", firstMagic);
    if (slash < 0) return true;
    const prefix = slash === 0 ? "/" : alt.slice(0, slash);
    try {
      return this.host.glob(prefix, dir).length > 0;
    } catch {
      return false;
    }
  }

  /** Opens the next readable file of a glob and pushes it; false when none is left. */
  private openNextGlobFile(g: GlobSource): boolean {
    const checks = this.includeCheck | g.includeType;
    while (g.next < g.matches.length) {
      const m = g.matches[g.next++];
      if (m.endsWith("/")) {
        this.fileProblem(INCLUDE_READ, checks, g.pos, `Configuration file '${m}' is a directory - skipping`, "a regular file");
        continue;
      }
      // The main file keeps the name it was given; included files get absolute paths.
      const path = g.isMain ? m : nodePath.resolve(g.dir, m);
      const abs = nodePath.resolve(path);
      const chain = this.stack.filter((s): s is FileSource => s.kind === "file");
      if (chain.some((s) => nodePath.resolve(s.path) === abs)) {
        const cycle = [...chain.map((s) => s.path), path].join(" -> ");
        this.diagnostics.error(g.pos, `include cycle: '${path}' is already being read (${cycle})`, "an include that does not include itself");
        continue;
      }
      if (chain.length >= MAX_INCLUDE_DEPTH) {
        this.diagnostics.error(g.pos, `includes nested more than ${MAX_INCLUDE_DEPTH} deep`, "fewer nested includes");
        continue;
      }
      let text: string;
      try {
        text = this.host.readFile(path);
      } catch (e) {
        const err = (typeof e === "object" && e !== null ? e : { message: String(e) }) as { code?: string; message?: string };
        if (err.code === "ENOTREG") {
          this.fileProblem(INCLUDE_READ, checks, g.pos, `Configuration file '${m}' is not a regular non-executable file - skipping`, "a regular non-executable file");
        } else {
          this.fileProblem(INCLUDE_READ, checks, g.pos, `Configuration file '${m}' open problem (${err.code ?? err.message ?? String(e)}) - skipping`, "a readable file");
        }
        continue;
      }
      g.opened++;
      this.files.push(path);
      this.stack.push(this.fileSource(path, text, g.savedCheck));
      return true;
    }
    return false;
  }

  private mainMissing(pos: SourcePos): void {
    if (this.missingMain) return;
    this.missingMain = true;
    this.diagnostics.error(pos, `Failed to open configuration file '${pos.file}'`, "a readable configuration file", true);
  }

  // ---- braces and blocks ----------------------------------------------------------

  /** Cuts the line at its first unquoted brace, keeping the rest for the next call. */
  private splitAtBrace(line: SourceLine): SourceLine {
    const b = findBrace(line.text);
    if (b < 0) return line;
    if (b === 0) {
      let r = 1;
      while (r < line.text.length && isBlank(line.text[r])) r++;
      if (r < line.text.length) this.residue = sliceLine(line, r);
      return sliceLine(line, 0, 1);
    }
    let e = b;
    while (e > 0 && isBlank(line.text[e - 1])) e--;
    this.residue = sliceLine(line, b);
    return sliceLine(line, 0, e);
  }

  /** Follows block nesting so `include_check` and `random_seed` take effect inside global_defs, as in keepalived. */
  private trackBlocks(tokens: Token[]): void {
    for (let i = 0; i < tokens.length; i++) {
      const tok = tokens[i];
      if (!tok.quoted && tok.text === "{") {
        this.blocks.push(this.lastKeyword);
        this.lastKeyword = null;
      } else if (!tok.quoted && tok.text === "}") {
        this.blocks.pop();
        this.lastKeyword = null;
      } else {
        this.lastKeyword = tok.text;
        if (tok.text === "include_check" && this.blocks.length === 1 && this.blocks[0] === "global_defs") {
          this.applyIncludeCheck(tokens.slice(i + 1));
        }
        // random_seed reseeds ${_RANDOM} from here on, as keepalived's srandom() at that line
        const seed = tokens[i + 1];
        if (tok.text === "random_seed" && this.blocks.length === 1 && this.blocks[0] === "global_defs" && seed && /^\d+$/.test(seed.text)) {
          this.random = makeRandom(Number(seed.text));
        }
        break;
      }
    }
  }

  /** `include_check [+|-]{read,match,wildcard_match,brace_match} ...`; bare = all checks. */
  private applyIncludeCheck(args: Token[]): void {
    if (args.length === 0) {
      this.includeCheck = INCLUDE_ALL;
      return;
    }
    const names: Record<string, number> = { read: INCLUDE_READ, readable: INCLUDE_READ, match: INCLUDE_MATCH, wildcard_match: INCLUDE_WILDCARD, brace_match: INCLUDE_BRACE };
    args.forEach((a, k) => {
      const sign = a.text[0] === "+" || a.text[0] === "-" ? a.text[0] : "";
      const word = sign ? a.text.slice(1) : a.text;
      if (!sign && k > 0) {
        this.diagnostics.error(a.pos, `Duplicate include_check '${a.text}' specified - ignoring`, "+CHECK or -CHECK after the first");
        return;
      }
      if (!sign) this.includeCheck = 0;
      const flag = names[word];
      if (flag === undefined) {
        this.diagnostics.error(a.pos, `Unknown include_check type '${word}' - ignoring`, "read, match, wildcard_match or brace_match");
        return;
      }
      if (!sign) this.includeCheck = INCLUDE_READ | flag;
      else if (sign === "+") this.includeCheck |= flag;
      else this.includeCheck &= ~flag;
    });
  }
}

/** Preprocesses the file at `mainPath` (or `mainText` named `mainPath`) to logical lines. */
export function preprocess(mainPath: string, host: PreprocessHost, mainText?: string): PreprocessResult {
  return new Preprocessor(mainPath, host, mainText).all();
}
