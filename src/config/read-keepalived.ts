/**
 * Entry point of the keepalived.conf front-end: preprocess the files (includes, `@ID`,
 * `$NAME`, `~SEQ`/`~LST`) and build the statement tree. Supplies the real file system,
 * glob and hostname unless the caller injects its own. Never throws for bad input.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import type { Statement } from "./ast.ts";
import type { Diagnostic } from "./diagnostics.ts";
import { Preprocessor, type PreprocessHost } from "./preprocess.ts";
import { buildTree } from "./tree.ts";

export interface ReadOptions {
  /** For `@id` / `@^id` and `${_INSTANCE}`; default: hostname up to the first '.'. */
  configId?: string;
  /** For `${_ENV X}`; default process.env. */
  env?: Record<string, string | undefined>;
  /** Seed for `${_RANDOM}`; default: time-based. */
  randomSeed?: number;
  /** Reads a file (throws on failure); default: the file system, regular non-executable files only. */
  readFile?: (path: string) => string;
  /** Matches a brace-free glob pattern relative to `cwd` (directories end in `/`); default: the file system. */
  glob?: (pattern: string, cwd: string) => string[];
}

export interface ReadResult {
  statements: Statement[];
  diagnostics: Diagnostic[];
  /** Every file read, main first, in the order opened (includes as absolute paths). */
  files: string[];
  /** The main configuration file could not be opened (keepalived exits 6: no config). */
  missingMain: boolean;
}

/** Reads `path` and everything it includes into statements and diagnostics. */
export function readKeepalivedConfig(path: string, opts: ReadOptions = {}): ReadResult {
  return run(path, opts, undefined);
}

/** Like readKeepalivedConfig, but the main file's content is `text`; includes resolve against `virtualPath`'s directory. */
export function readKeepalivedText(text: string, virtualPath: string, opts: ReadOptions = {}): ReadResult {
  return run(virtualPath, opts, text);
}

function run(path: string, opts: ReadOptions, text: string | undefined): ReadResult {
  const host: PreprocessHost = {
    configId: opts.configId ?? defaultConfigId(),
    env: opts.env ?? process.env,
    randomSeed: opts.randomSeed ?? (Date.now() & 0x7fffffff),
    readFile: opts.readFile ?? readRegularFile,
    glob: opts.glob ?? globFiles,
  };
  const pre = new Preprocessor(path, host, text);
  let statements: Statement[] = [];
  try {
    statements = buildTree(
      {
        [Symbol.iterator]: () => ({
          next: () => {
            const l = pre.next();
            return l === null ? { done: true, value: undefined } : { done: false, value: l };
          },
        }),
      },
      pre.diagnostics,
    );
  } catch (e) {
    // Bad input must never throw to the caller; a bug surfaces as a fatal diagnostic instead.
    pre.diagnostics.error({ file: path, line: 1, col: 1 }, `internal error while reading the configuration: ${e instanceof Error ? e.message : String(e)}`, undefined, true);
  }
  return { statements, diagnostics: pre.diagnostics.items, files: pre.files, missingMain: pre.missingMain };
}

/** keepalived's default config-id: the node name up to the first '.'. */
export function defaultConfigId(): string {
  return os.hostname().split(".")[0];
}

/** Reads a regular, non-executable file as text, as keepalived insists; throws otherwise. */
export function readRegularFile(path: string): string {
  const st = fs.statSync(path);
  if (!st.isFile() || (st.mode & 0o111) !== 0) {
    throw Object.assign(new Error(`${path}: not a regular non-executable file`), { code: "ENOTREG" });
  }
  return fs.readFileSync(path, "utf8");
}

/** Converts one glob path component (`*`, `?`, `[...]`, `\` escapes) to a RegExp. */
function componentRegex(pat: string): RegExp {
  let re = "^";
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i];
    if (c === "\\" && i + 1 < pat.length) {
      re += escapeRe(pat[++i]);
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const close = pat.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = pat.slice(i + 1, close);
      let neg = false;
      if (body[0] === "!" || body[0] === "^") {
        neg = true;
        body = body.slice(1);
      }
      re += `[${neg ? "^" : ""}${body.replace(/[\\\]^]/g, (m) => "\\" + m)}]`;
      i = close;
    } else re += escapeRe(c);
  }
  return new RegExp(re + "$", "s");
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function hasMagic(s: string): boolean {
  return /(^|[^\\])[*?[]/.test(s);
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * A file-system glob like glibc's glob(GLOB_MARK) without braces: sorted matches,
 * directories marked with a trailing `/`, leading dots matched only explicitly.
 * Relative patterns resolve against `cwd` and results stay relative.
 */
export function globFiles(pattern: string, cwd: string): string[] {
  const abs = pattern.startsWith("/");
  const parts = pattern.split("/").filter((p, i) => p.length > 0 || i === 0);
  let found: string[] = [abs ? "/" : ""];
  const parts2 = abs ? parts.slice(1) : parts;
  for (const part of parts2) {
    const next: string[] = [];
    for (const base of found) {
      const join = (name: string): string => (base === "" ? name : base.endsWith("/") ? base + name : base + "/" + name);
      if (!hasMagic(part)) {
        next.push(join(part.replace(/\\(.)/g, "$1")));
        continue;
      }
      const real = nodePath.resolve(cwd, base === "" ? "." : base);
      let names: string[];
      try {
        names = fs.readdirSync(real);
      } catch {
        continue;
      }
      const re = componentRegex(part);
      const explicitDot = part.startsWith(".") || part.startsWith("\\.");
      for (const n of names.sort()) {
        if (n.startsWith(".") && !explicitDot) continue;
        if (re.test(n)) next.push(join(n));
      }
    }
    found = next;
  }
  const out: string[] = [];
  for (const f of found) {
    if (f === "") continue;
    if (f === "/") {
      out.push("/");
      continue;
    }
    const real = nodePath.resolve(cwd, f);
    if (!exists(real)) continue;
    out.push(isDir(real) && !f.endsWith("/") ? f + "/" : f);
  }
  return out;
}
