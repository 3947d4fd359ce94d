/** Loading a config: find the file, detect its format, read it into a document and resolve the model. */
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { Diagnostics, type SourcePos } from "./diagnostics.ts";
import type { Model } from "./model.ts";
import { readKeepalivedText } from "./read-keepalived.ts";
import { resolve } from "./resolve.ts";
import { type Ctx, type Doc, interpretBlock, PosMap } from "./schema/kinds.ts";
import { rootSpec } from "./schema/root.ts";
import { readYamlText } from "./yaml.ts";

export const DEFAULT_PATHS = ["/etc/vipd/vipd.yaml", "/etc/keepalived/keepalived.conf"];

export type ConfigFormat = "yaml" | "keepalived";

export interface LoadOptions {
  configId?: string;
  hostname?: string;
  env?: Record<string, string | undefined>;
  randomSeed?: number;
  /** Skip detection. */
  format?: ConfigFormat;
}

export interface Loaded {
  path: string;
  format: ConfigFormat;
  /** The document: what the file says, typed, aliases resolved, nothing defaulted. */
  doc: Doc;
  model: Model;
  diagnostics: Diagnostics;
  pos: PosMap;
  /** Every file read (includes too). */
  files: string[];
  /** The main file could not be read at all (keepalived's exit 6 in check mode). */
  missing: boolean;
}

/** The first default path that exists, else the first default. */
export function defaultConfigPath(): string {
  return DEFAULT_PATHS.find((p) => existsSync(p)) ?? DEFAULT_PATHS[0];
}

/** `.yaml`/`.yml` by name; otherwise YAML if the first meaningful line looks like `key:`. */
export function detectFormat(path: string, text: string): ConfigFormat {
  if (/\.ya?ml$/i.test(path)) return "yaml";
  if (/\.conf$/i.test(path)) return "keepalived";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith("!")) continue;
    if (line === "---" || /^[A-Za-z_][\w-]*:(\s|$)/.test(line)) return "yaml";
    return "keepalived";
  }
  return "keepalived";
}

export function shortHostname(h = hostname()): string {
  return h.split(".")[0];
}

/** Reads and resolves a config file; never throws for bad input. */
export function loadConfig(path: string, opts: LoadOptions = {}): Loaded {
  let text: string | undefined;
  let readError: string | undefined;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    readError = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code;
  }
  return loadConfigText(text, path, opts, readError);
}

/**
 * Resolves config text as if read from `path` (includes resolve relative to it).
 * `text` undefined means the file could not be read (`readError` says why).
 */
export function loadConfigText(text: string | undefined, path: string, opts: LoadOptions = {}, readError = "cannot read"): Loaded {
  const diagnostics = new Diagnostics();
  const pos = new PosMap();
  const ctx: Ctx = { diags: diagnostics, pos };
  const origin: SourcePos = { file: path, line: 1, col: 1 };
  if (text === undefined)
    diagnostics.error(origin, `cannot read config file: ${readError}`, "a readable keepalived.conf or YAML file", true);
  const format = opts.format ?? (text === undefined ? "keepalived" : detectFormat(path, text));
  let doc: Doc = {};
  let files = [path];
  if (text !== undefined) {
    if (format === "yaml") doc = readYamlText(text, path, ctx);
    else {
      const read = readKeepalivedText(text, path, { configId: opts.configId ?? shortHostname(opts.hostname), env: opts.env, randomSeed: opts.randomSeed });
      diagnostics.addAll(read.diagnostics);
      files = read.files;
      pos.set(doc, "", origin);
      interpretBlock(rootSpec, read.statements, ctx, doc);
    }
  }
  const model = resolve(doc, diagnostics, pos, { hostname: opts.hostname ?? hostname(), origin });
  return { path, format, doc, model, diagnostics, pos, files, missing: text === undefined };
}

/** Resolves a document that did not come from a file (conversion round trips, tests). */
export function resolveDoc(doc: Doc, hostnameValue = "localhost"): { model: Model; diagnostics: Diagnostics } {
  const diagnostics = new Diagnostics();
  const model = resolve(doc, diagnostics, new PosMap(), { hostname: hostnameValue, origin: { file: "-", line: 1, col: 1 } });
  return { model, diagnostics };
}
