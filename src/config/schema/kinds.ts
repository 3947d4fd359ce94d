/**
 * Statement kinds: how one keyword's statement (arguments and optional `{ }` block) maps to a
 * typed document value, to YAML, back to keepalived.conf text, and to JSON Schema.
 * The schema tables (schema/*.ts) are built from these, so every front-end, emitter and the
 * JSON Schema come from one definition.
 */
import type { Statement, Token } from "../ast.ts";
import type { Diagnostics, SourcePos } from "../diagnostics.ts";
import { suggest } from "../suggest.ts";
import { bool, type Scalar } from "./scalar.ts";

/** A YAML node with positions (built by config/yaml.ts). */
export interface YNode {
  kind: "scalar" | "map" | "seq" | "null";
  /** The JS value of a scalar. */
  value: unknown;
  pos: SourcePos;
  entries: Array<{ key: string; keyPos: SourcePos; node: YNode }>;
  items: YNode[];
}

/** Where each field of a document object was written, for later (semantic) diagnostics. */
export class PosMap {
  #m = new WeakMap<object, Record<string, SourcePos>>();
  set(obj: object, key: string, pos: SourcePos): void {
    let r = this.#m.get(obj);
    if (!r) this.#m.set(obj, (r = {}));
    r[key] = pos;
  }
  get(obj: object, key?: string): SourcePos | undefined {
    const r = this.#m.get(obj);
    if (!r) return undefined;
    return key === undefined ? r[""] : (r[key] ?? r[""]);
  }
}

export interface Ctx {
  diags: Diagnostics;
  pos: PosMap;
}

/** A statement to print: `keyword args... [{ children }]`. */
export interface ConfStmt {
  keyword: string;
  args: string[];
  children?: ConfStmt[];
}
/** One occurrence of a keyword in printed form (the keyword itself is added by the caller). */
export interface ConfOut {
  args: string[];
  children?: ConfStmt[];
}

export interface Kind<T> {
  /** One line describing the keepalived syntax of the arguments, for docs. */
  readonly syntax: string;
  /** One line describing the YAML form of the value, for docs. */
  readonly yaml: string;
  /** The block spec of a `{ }` kind, so docs can walk the whole keyword tree. */
  readonly nested?: BlockSpec;
  /** How repeated occurrences of the keyword combine. */
  readonly repeat: "replace" | "append" | "merge";
  fromConf(st: Statement, ctx: Ctx): T | undefined;
  /** `key` names the YAML key the node belongs to, for messages. */
  fromYaml(n: YNode, ctx: Ctx, key?: string): T | undefined;
  /** One entry per statement to print. */
  toConf(v: T): ConfOut[];
  toYaml(v: T): unknown;
  jsonSchema(): Record<string, unknown>;
  /** Combine a repeated occurrence with the earlier value (for append/merge kinds). */
  combine?(a: T, b: T): T;
  /** Values are maps keyed by a user-chosen name (`vrrp_instance NAME`): a repeated name is an error. */
  keyedByName?: boolean;
}

export type KindValue<K> = K extends Kind<infer T> ? T : never;

// ---------------------------------------------------------------------------------------------
// helpers

function needNoBlock(st: Statement, ctx: Ctx): void {
  if (st.children) ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' does not take a { } block`, "arguments only");
}

function extraArgs(toks: Token[], ctx: Ctx, what: string): void {
  if (toks.length) ctx.diags.warning(toks[0].pos, `unexpected argument '${toks[0].text}' after ${what} (ignored)`);
}

function scalarFromToken<T>(s: Scalar<T>, tok: Token, ctx: Ctx, kw: string): T | undefined {
  const r = s.parse(tok.text);
  if (r.ok) return r.value;
  ctx.diags.error(tok.pos, `${kw}: ${r.message ?? `invalid value '${tok.text}'`}`, r.expected);
  return undefined;
}

function scalarFromYaml<T>(s: Scalar<T>, n: YNode, ctx: Ctx, what: string): T | undefined {
  if (n.kind !== "scalar") {
    ctx.diags.error(n.pos, `${what}: expected a single value`, s.expected);
    return undefined;
  }
  const r = s.fromYaml(n.value);
  if (r.ok) return r.value;
  ctx.diags.error(n.pos, `${what}: ${r.message ?? `invalid value '${String(n.value)}'`}`, r.expected);
  return undefined;
}

/** Splits a YAML string shorthand into tokens with column positions, honouring quotes. */
export function tokensOfString(text: string, pos: SourcePos): Token[] {
  const out: Token[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const quoted = m[3] === undefined;
    out.push({ text: m[1] ?? m[2] ?? m[3], quoted, pos: { ...pos, col: pos.col + m.index } });
  }
  return out;
}

/** Quotes a word for keepalived.conf when it would not survive as a bare word. */
export function quoteWord(w: string): string {
  if (w !== "" && !/[\s"'#!{}\\$]/.test(w)) return w;
  return `"${w.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// ---------------------------------------------------------------------------------------------
// kinds

/** A switch: bare keyword = true, or an optional <BOOL> argument. */
export function flag(): Kind<boolean> {
  const b = bool();
  return {
    syntax: "[<BOOL>]",
    yaml: "`true` or `false`",
    repeat: "replace",
    fromConf(st, ctx) {
      needNoBlock(st, ctx);
      if (!st.args.length) return true;
      const v = scalarFromToken(b, st.args[0], ctx, st.keyword.text);
      extraArgs(st.args.slice(1), ctx, st.keyword.text);
      return v;
    },
    fromYaml: (n, ctx, key) => (n.kind === "null" ? true : scalarFromYaml(b, n, ctx, key ?? "value")),
    toConf: (v) => [{ args: v ? [] : ["false"] }],
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "boolean" }),
  };
}

/** Exactly one argument of a scalar kind. */
export function one<T>(s: Scalar<T>, syntax = s.expected): Kind<T> {
  return {
    syntax,
    yaml: s.expected,
    repeat: "replace",
    fromConf(st, ctx) {
      needNoBlock(st, ctx);
      if (!st.args.length) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a value`, s.expected);
        return undefined;
      }
      const v = scalarFromToken(s, st.args[0], ctx, st.keyword.text);
      extraArgs(st.args.slice(1), ctx, st.keyword.text);
      return v;
    },
    fromYaml: (n, ctx, key) => scalarFromYaml(s, n, ctx, key ?? "value"),
    toConf: (v) => [{ args: [quoteWord(s.print(v))] }],
    toYaml: (v) => s.toYaml(v),
    jsonSchema: () => s.jsonSchema(),
  };
}

/** All remaining words joined by single spaces (free text such as router_id with spaces). */
export function text(): Kind<string> {
  return {
    syntax: "TEXT",
    yaml: "a string",
    repeat: "replace",
    fromConf(st, ctx) {
      needNoBlock(st, ctx);
      if (!st.args.length) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a value`, "a value");
        return undefined;
      }
      return st.args.map((t) => t.text).join(" ");
    },
    fromYaml(n, ctx, key) {
      if (n.kind === "scalar") return String(n.value);
      ctx.diags.error(n.pos, `${key ?? "value"}: expected a string`, "a string");
      return undefined;
    },
    toConf: (v) => [{ args: [quoteWord(v)] }],
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string" }),
  };
}

/** One or more arguments of one scalar kind, on the keyword's line (`vrrp_ipsets a b c`). */
export function list<T>(s: Scalar<T>, min = 1): Kind<T[]> {
  return {
    syntax: `${s.expected} ...`,
    yaml: `a list of ${s.expected} (or one value)`,
    repeat: "replace",
    fromConf(st, ctx) {
      needNoBlock(st, ctx);
      if (st.args.length < min) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs at least ${min} value(s)`, s.expected);
        return undefined;
      }
      const out: T[] = [];
      for (const t of st.args) {
        const v = scalarFromToken(s, t, ctx, st.keyword.text);
        if (v !== undefined) out.push(v);
      }
      return out;
    },
    fromYaml(n, ctx, key) {
      const items = n.kind === "seq" ? n.items : [n];
      const out: T[] = [];
      for (const it of items) {
        const v = scalarFromYaml(s, it, ctx, key ? `${key} item` : "list item");
        if (v !== undefined) out.push(v);
      }
      return out;
    },
    toConf: (v) => [{ args: v.map((x) => quoteWord(s.print(x))) }],
    toYaml: (v) => v.map((x) => s.toYaml(x)),
    jsonSchema: () => ({ type: "array", items: s.jsonSchema() }),
  };
}

// --- records: positional arguments plus named options ---------------------------------------

export interface FieldSpec {
  /** Field name in the document (snake_case). */
  name: string;
  scalar?: Scalar<unknown>;
  /** Positional field that may be skipped when the word does not fit it. */
  optional?: boolean;
  /** Named option `word VALUE` (or a bare switch when `flag`). Default: positional. */
  option?: string | string[];
  /** A bare word option: present = true. */
  flag?: boolean;
  /** Consume all remaining words (a command line, say). */
  rest?: boolean;
  doc?: string;
}

export type Rec = Record<string, unknown>;

const fieldIndexes = new WeakMap<FieldSpec[], { positional: FieldSpec[]; byOption: Map<string, FieldSpec> }>();
/** Positional fields and option words of a field list, computed once per list (hot in big configs). */
function fieldIndex(fields: FieldSpec[]): { positional: FieldSpec[]; byOption: Map<string, FieldSpec> } {
  let ix = fieldIndexes.get(fields);
  if (!ix) {
    const byOption = new Map<string, FieldSpec>();
    for (const f of fields) for (const o of [f.option ?? []].flat()) byOption.set(o.toLowerCase(), f);
    ix = { positional: fields.filter((f) => !f.option), byOption };
    fieldIndexes.set(fields, ix);
  }
  return ix;
}

/**
 * Parses words into a record: positional fields in order (optional ones skipped when the word
 * does not parse), named options (`dev eth0`) and switches (`home`) anywhere.
 */
export function parseRecordWords(fields: FieldSpec[], toks: Token[], ctx: Ctx, kw: string, at: SourcePos): Rec | undefined {
  const rec: Rec = {};
  const { positional, byOption } = fieldIndex(fields);
  let p = 0;
  let failed = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    const opt = t.quoted ? undefined : byOption.get(t.text.toLowerCase());
    if (opt) {
      if (opt.flag) {
        rec[opt.name] = true;
        continue;
      }
      const v = toks[i + 1];
      if (!v) {
        ctx.diags.error(t.pos, `${kw}: '${t.text}' needs a value`, opt.scalar?.expected);
        failed = true;
        break;
      }
      i++;
      const val = opt.scalar ? scalarFromToken(opt.scalar, v, ctx, `${kw} ${t.text}`) : v.text;
      if (val === undefined) failed = true;
      else rec[opt.name] = val;
      ctx.pos.set(rec, opt.name, v.pos);
      continue;
    }
    // positional: optional fields whose kind does not fit this word are skipped
    const firstTried = p;
    while (p < positional.length) {
      const f = positional[p];
      if (f.rest) {
        rec[f.name] = toks.slice(i).map((x) => x.text).join(" ");
        ctx.pos.set(rec, f.name, t.pos);
        return failed ? undefined : rec;
      }
      if (f.optional && f.scalar && !f.scalar.parse(t.text).ok) {
        p++;
        continue;
      }
      break;
    }
    const f = positional[p];
    if (!f) {
      const skipped = positional[firstTried];
      if (skipped?.scalar && firstTried === 0 && i === 0) {
        // nothing fitted the very first word: report it against the first field's kind
        scalarFromToken(skipped.scalar, t, ctx, kw);
        failed = true;
        continue;
      }
      const near = suggest(t.text, [...byOption.keys()]);
      ctx.diags.warning(t.pos, `${kw}: unexpected word '${t.text}' (ignored)${near ? `; did you mean '${near}'` : ""}`);
      continue;
    }
    p++;
    const val = f.scalar ? scalarFromToken(f.scalar, t, ctx, kw) : t.text;
    if (val === undefined) failed = true;
    else rec[f.name] = val;
    ctx.pos.set(rec, f.name, t.pos);
  }
  const missing = positional.slice(p).find((f) => !f.optional && !f.rest && rec[f.name] === undefined);
  if (missing && !failed) {
    ctx.diags.error(at, `${kw}: missing ${missing.doc ?? missing.name}`, missing.scalar?.expected);
    return undefined;
  }
  return failed ? undefined : rec;
}

/** Prints a record back into words (positional first, then options in field order). */
export function printRecordWords(fields: FieldSpec[], rec: Rec): string[] {
  const words: string[] = [];
  const printed = new Set<string>();
  for (const f of fields.filter((x) => !x.option)) {
    const v = rec[f.name];
    if (v === undefined) continue;
    printed.add(f.name);
    words.push(f.rest ? String(v) : quoteWord(f.scalar ? f.scalar.print(v) : String(v)));
  }
  for (const f of fields.filter((x) => x.option)) {
    const v = rec[f.name];
    if (v === undefined || v === false || printed.has(f.name)) continue;
    printed.add(f.name);
    const o = [f.option!].flat()[0];
    if (f.flag) words.push(o);
    else words.push(o, quoteWord(f.scalar ? f.scalar.print(v) : String(v)));
  }
  return words;
}

/** The distinct field names of a record, for docs. */
function fieldNames(fields: FieldSpec[]): string {
  return [...new Set(fields.map((f) => f.name))].join(", ");
}

function recordJsonSchema(fields: FieldSpec[]): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const f of fields) {
    props[f.name] = f.flag ? { type: "boolean" } : f.scalar ? f.scalar.jsonSchema() : { type: "string" };
    if (f.doc) (props[f.name] as Rec).description = f.doc;
  }
  const required = fields.filter((f) => !f.option && !f.optional && !f.rest).map((f) => f.name);
  return { type: "object", properties: props, additionalProperties: false, ...(required.length ? { required } : {}) };
}

function recordFromYamlMap(fields: FieldSpec[], n: YNode, ctx: Ctx, what: string): Rec | undefined {
  const rec: Rec = {};
  const names = fields.map((f) => f.name);
  let failed = false;
  for (const e of n.entries) {
    const f = fields.find((x) => x.name === e.key);
    if (!f) {
      const near = suggest(e.key, names);
      ctx.diags.error(e.keyPos, `unknown key '${e.key}' in ${what}${near ? `; did you mean '${near}'?` : ""}`, `one of ${names.join(", ")}`);
      failed = true;
      continue;
    }
    const s = f.flag ? bool() : f.scalar;
    const v = s ? scalarFromYaml(s, e.node, ctx, e.key) : e.node.kind === "scalar" ? String(e.node.value) : undefined;
    if (v === undefined) failed = true;
    else rec[f.name] = v;
    ctx.pos.set(rec, f.name, e.node.pos);
  }
  const missing = fields.find((f) => !f.option && !f.optional && !f.rest && rec[f.name] === undefined);
  if (missing && !failed) {
    ctx.diags.error(n.pos, `${what}: missing '${missing.name}'`, missing.scalar?.expected);
    return undefined;
  }
  return failed ? undefined : rec;
}

/**
 * A record of positional arguments and options on the keyword's line
 * (`smtp_server 192.0.2.1 25`, `notify_master "/x.sh" root`). YAML takes the object form or,
 * when `shorthand`, the same words as one string.
 */
export function record<R extends Rec>(fields: FieldSpec[], opts: { syntax: string; shorthand?: boolean; yamlAsString?: boolean }): Kind<R> {
  return {
    syntax: opts.syntax,
    yaml: `${opts.shorthand === false ? "" : `the words as one string, or `}a mapping {${fieldNames(fields)}}`,
    repeat: "replace",
    fromConf(st, ctx) {
      needNoBlock(st, ctx);
      return parseRecordWords(fields, st.args, ctx, st.keyword.text, st.keyword.pos) as R | undefined;
    },
    fromYaml(n, ctx, key = "value") {
      if (n.kind === "map") return recordFromYamlMap(fields, n, ctx, key) as R | undefined;
      if (n.kind === "scalar" && opts.shorthand !== false)
        return parseRecordWords(fields, tokensOfString(String(n.value), n.pos), ctx, key, n.pos) as R | undefined;
      ctx.diags.error(n.pos, `${key}: expected a mapping or a string`, opts.syntax);
      return undefined;
    },
    toConf: (v) => [{ args: printRecordWords(fields, v) }],
    toYaml(v) {
      if (opts.yamlAsString) return printRecordWords(fields, v).join(" ");
      // only the first field set, as one plain word: write the short form (`weight: -20`)
      const first = fields.find((f) => !f.option);
      const set = Object.keys(v).filter((k) => v[k] !== undefined);
      if (opts.shorthand !== false && first && set.length === 1 && set[0] === first.name) {
        const word = first.scalar ? first.scalar.print(v[first.name]) : String(v[first.name]);
        if (word !== "" && quoteWord(word) === word) return first.scalar ? first.scalar.toYaml(v[first.name]) : word;
      }
      return { ...v };
    },
    // the short form is any scalar: its text is read as the keepalived words
    jsonSchema: () =>
      opts.shorthand === false ? recordJsonSchema(fields) : { oneOf: [recordJsonSchema(fields), { type: ["string", "number", "boolean"] }] },
  };
}

/** `CMD [USER [GROUP]]`: a script to run, optionally as another user. */
export interface ScriptRef extends Rec {
  cmd: string;
  user?: string;
  group?: string;
}
export function script(): Kind<ScriptRef> {
  return record<ScriptRef>(
    [
      { name: "cmd", doc: "the command line (quote it when it has arguments)" },
      { name: "user", optional: true },
      { name: "group", optional: true },
    ],
    { syntax: '"COMMAND ARGS..." [USER [GROUP]]', yamlAsString: false },
  );
}

// --- blocks ------------------------------------------------------------------------------------

export interface KwSpec<T = unknown> {
  kind: Kind<T>;
  doc: string;
  /** keepalived's default, applied by resolve. */
  default?: T;
  /**
   * "not-implemented": parsed and kept, but vipd does not act on it yet (a warning says so).
   * "deprecated": accepted, with a warning naming the replacement in `note`.
   * "ignored": has no effect in vipd by design (process tuning, SNMP, …); a notice says so.
   */
  status?: "not-implemented" | "deprecated" | "ignored";
  note?: string;
}

export interface BlockSpec {
  /** Block name, used in messages ("in vrrp_instance"). */
  name: string;
  keywords: Record<string, KwSpec<any>>;
  /** alias → canonical keyword. */
  aliases?: Record<string, string>;
}

export type Doc = Record<string, unknown>;

/** Adds one occurrence of a keyword to a block's document, combining repeats per the kind. */
function store(doc: Doc, key: string, spec: KwSpec, v: unknown, pos: SourcePos, ctx: Ctx): void {
  const prev = doc[key];
  if (prev !== undefined && spec.kind.keyedByName) {
    for (const name of Object.keys(v as Rec)) if (name in (prev as Rec)) ctx.diags.error(pos, `duplicate ${key} name '${name}'`, "a unique name");
  }
  if (prev !== undefined && spec.kind.repeat !== "replace" && spec.kind.combine) {
    doc[key] = spec.kind.combine(prev, v);
    return;
  }
  if (prev !== undefined && spec.kind.repeat === "replace")
    ctx.diags.warning(pos, `'${key}' given more than once; the last one is used`);
  doc[key] = v;
  ctx.pos.set(doc, key, pos);
}

function statusWarning(key: string, spec: KwSpec, pos: SourcePos, ctx: Ctx, alias?: string): void {
  const shown = alias ?? key;
  if (spec.status === "not-implemented")
    ctx.diags.warning(pos, `'${shown}' is parsed but not yet implemented by vipd; it has no effect${spec.note ? ` (${spec.note})` : ""}`);
  else if (spec.status === "deprecated")
    ctx.diags.warning(pos, `'${shown}' is deprecated${spec.note ? `: ${spec.note}` : ""}`);
  else if (spec.status === "ignored")
    ctx.diags.info(pos, `'${shown}' has no effect in vipd${spec.note ? ` (${spec.note})` : ""}`);
}

function lookup(spec: BlockSpec, word: string): { key: string; kw: KwSpec } | undefined {
  const key = spec.aliases?.[word] ?? word;
  const kw = spec.keywords[key];
  return kw ? { key, kw } : undefined;
}

function allNames(spec: BlockSpec): string[] {
  return [...Object.keys(spec.keywords), ...Object.keys(spec.aliases ?? {})];
}

/** Where a keyword that is unknown in one block does belong (registered by registerHomes). */
const homes = new Map<string, string>();
/** Records which block each keyword of `spec` (and its nested blocks) belongs to, for misplacement errors. */
export function registerHomes(spec: BlockSpec, nested: BlockSpec[] = []): void {
  for (const s of [spec, ...nested]) for (const k of allNames(s)) if (!homes.has(k)) homes.set(k, s.name);
}
function homeOf(word: string): string | undefined {
  return homes.get(word);
}

/** Interprets the children of a `{ }` block against a block spec. */
export function interpretBlock(spec: BlockSpec, children: Statement[], ctx: Ctx, into: Doc = {}): Doc {
  for (const st of children) {
    const word = st.keyword.text;
    const hit = lookup(spec, word);
    if (!hit) {
      const home = homeOf(word);
      if (home && home !== spec.name) {
        ctx.diags.error(st.keyword.pos, `'${word}' is not valid in ${spec.name}; it belongs in ${home} (ignored)`, `a keyword of ${spec.name}`);
        continue;
      }
      const near = suggest(word, allNames(spec));
      ctx.diags.warning(
        st.keyword.pos,
        `unknown keyword '${word}' in ${spec.name}${near ? `; did you mean '${near}'?` : ""} (ignored${st.children ? " with its block" : ""})`,
        undefined,
        "unknown-keyword",
      );
      continue;
    }
    statusWarning(hit.key, hit.kw, st.keyword.pos, ctx, word !== hit.key ? word : undefined);
    const v = hit.kw.kind.fromConf(st, ctx);
    // semantic checks later point at the value when there is one (`virtual_router_id 51` → 51)
    if (v !== undefined) store(into, hit.key, hit.kw, v, st.children ? st.keyword.pos : (st.args[0]?.pos ?? st.keyword.pos), ctx);
  }
  return into;
}

/** Interprets a YAML mapping against a block spec; unknown keys are errors with a suggestion. */
export function interpretYamlBlock(spec: BlockSpec, n: YNode, ctx: Ctx, into: Doc = {}, extraKeys: string[] = []): Doc | undefined {
  if (n.kind === "null") return into;
  if (n.kind !== "map") {
    ctx.diags.error(n.pos, `${spec.name}: expected a mapping of keywords`, "a mapping");
    return undefined;
  }
  for (const e of n.entries) {
    if (extraKeys.includes(e.key)) continue;
    const hit = lookup(spec, e.key);
    if (!hit) {
      const near = suggest(e.key, [...allNames(spec), ...extraKeys]);
      ctx.diags.error(e.keyPos, `unknown key '${e.key}' in ${spec.name}${near ? `; did you mean '${near}'?` : ""}`, `a keyword of ${spec.name}`);
      continue;
    }
    statusWarning(hit.key, hit.kw, e.keyPos, ctx, e.key !== hit.key ? e.key : undefined);
    const v = hit.kw.kind.fromYaml(e.node, ctx, e.key);
    if (v !== undefined) {
      // an alias and its keyword both given (`lb_algo` and `lvs_sched`): YAML's own check cannot see it
      if (into[hit.key] !== undefined) ctx.diags.warning(e.keyPos, `'${hit.key}' is given twice in ${spec.name} (once through an alias such as '${e.key === hit.key ? Object.keys(spec.aliases ?? {}).find((a) => spec.aliases?.[a] === hit.key) : e.key}'); the last one is used`);
      into[hit.key] = v;
      ctx.pos.set(into, hit.key, e.keyPos);
    }
  }
  return into;
}

/** Prints a block document as keepalived statements, in the spec's keyword order. */
export function printBlock(spec: BlockSpec, doc: Doc): ConfStmt[] {
  const out: ConfStmt[] = [];
  for (const [key, kw] of Object.entries(spec.keywords)) {
    const v = doc[key];
    if (v === undefined) continue;
    for (const o of kw.kind.toConf(v)) out.push({ keyword: key, args: o.args, children: o.children });
  }
  return out;
}

/** Converts a block document to its YAML form (keyword order of the spec). */
export function blockToYaml(spec: BlockSpec, doc: Doc): Rec {
  const out: Rec = {};
  for (const [key, kw] of Object.entries(spec.keywords)) {
    const v = doc[key];
    if (v !== undefined) out[key] = kw.kind.toYaml(v);
  }
  return out;
}

export function blockJsonSchema(spec: BlockSpec, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const props: Record<string, unknown> = { ...extra };
  for (const [key, kw] of Object.entries(spec.keywords)) {
    const s = { ...kw.kind.jsonSchema(), description: kw.doc + (kw.status === "not-implemented" ? " (not yet implemented by vipd)" : "") };
    if (kw.default !== undefined && typeof kw.default !== "object") (s as Rec).default = kw.default;
    props[key] = s;
  }
  for (const [alias, canon] of Object.entries(spec.aliases ?? {}))
    props[alias] = { $comment: `alias of ${canon}`, ...(props[canon] as Rec) };
  return { type: "object", properties: props, additionalProperties: false };
}

/** A `keyword { ... }` sub-block (no header arguments). */
export function block(spec: BlockSpec): Kind<Doc> {
  return {
    syntax: "{ ... }",
    yaml: `a mapping of ${spec.name} keywords`,
    nested: spec,
    repeat: "merge",
    fromConf(st, ctx) {
      if (!st.children) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a { } block`, "'{'");
        return undefined;
      }
      extraArgs(st.args, ctx, st.keyword.text);
      const doc: Doc = {};
      ctx.pos.set(doc, "", st.keyword.pos);
      return interpretBlock(spec, st.children, ctx, doc);
    },
    fromYaml(n, ctx) {
      const doc: Doc = {};
      ctx.pos.set(doc, "", n.pos);
      return interpretYamlBlock(spec, n, ctx, doc);
    },
    combine: (a, b) => ({ ...a, ...b }),
    toConf: (v) => [{ args: [], children: printBlock(spec, v) }],
    toYaml: (v) => blockToYaml(spec, v),
    jsonSchema: () => blockJsonSchema(spec),
  };
}

/** A block of bare words, on any number of lines (`group { VI_1 VI_2 }`, `notification_email { ... }`). */
export function words<T = string>(s: Scalar<T>, inline = false): Kind<T[]> {
  return {
    syntax: inline ? "WORD... | { WORD... }" : "{ WORD... }",
    yaml: `a list of ${s.expected}`,
    repeat: "append",
    fromConf(st, ctx) {
      const toks = [...st.args];
      if (st.children) {
        for (const c of st.children) {
          toks.push(c.keyword, ...c.args);
          if (c.children) ctx.diags.error(c.keyword.pos, `unexpected { } block inside '${st.keyword.text}'`);
        }
      } else if (!inline) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a { } block`, "'{'");
        return undefined;
      } else if (!toks.length) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a value`, s.expected);
        return undefined;
      }
      const out: T[] = [];
      for (const t of toks) {
        const v = scalarFromToken(s, t, ctx, st.keyword.text);
        if (v !== undefined) {
          ctx.pos.set(out, String(out.length), t.pos);
          out.push(v);
        }
      }
      return out;
    },
    fromYaml(n, ctx) {
      const items = n.kind === "seq" ? n.items : n.kind === "null" ? [] : [n];
      const out: T[] = [];
      for (const it of items) {
        const v = scalarFromYaml(s, it, ctx, "list item");
        if (v !== undefined) {
          ctx.pos.set(out, String(out.length), it.pos);
          out.push(v);
        }
      }
      return out;
    },
    combine(a, b) {
      for (const x of b) a.push(x); // in place, see named()
      return a;
    },
    toConf: (v) => [{ args: [], children: v.map((w) => ({ keyword: quoteWord(s.print(w)), args: [] })) }],
    toYaml: (v) => v.map((x) => s.toYaml(x)),
    jsonSchema: () => ({ type: "array", items: s.jsonSchema() }),
  };
}

/**
 * A block whose lines are records (`virtual_ipaddress { 192.0.2.1/24 dev eth0 }`): the line's
 * first word is the first field. In YAML a list of strings (the same words) or of mappings.
 */
export function lines<R extends Rec>(fields: FieldSpec[], syntax: string): Kind<R[]> {
  const rec = record<R>(fields, { syntax, yamlAsString: true });
  return {
    syntax: `{ ${syntax} ... }`,
    yaml: `a list of lines: strings as in keepalived.conf, or mappings {${fieldNames(fields)}}`,
    repeat: "append",
    fromConf(st, ctx) {
      if (!st.children) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a { } block`, "'{'");
        return undefined;
      }
      extraArgs(st.args, ctx, st.keyword.text);
      const out: R[] = [];
      for (const c of st.children) {
        if (c.children) ctx.diags.error(c.keyword.pos, `unexpected { } block inside '${st.keyword.text}'`);
        const r = parseRecordWords(fields, [c.keyword, ...c.args], ctx, st.keyword.text, c.keyword.pos);
        if (r) {
          ctx.pos.set(r, "", c.keyword.pos);
          out.push(r as R);
        }
      }
      return out;
    },
    fromYaml(n, ctx, key) {
      const items = n.kind === "seq" ? n.items : n.kind === "null" ? [] : [n];
      const out: R[] = [];
      for (const it of items) {
        const r = rec.fromYaml(it, ctx, key);
        if (r) {
          ctx.pos.set(r, "", it.pos);
          out.push(r);
        }
      }
      return out;
    },
    combine(a, b) {
      for (const x of b) a.push(x); // in place, see named()
      return a;
    },
    toConf: (v) => [{ args: [], children: v.map((r) => { const w = printRecordWords(fields, r); return { keyword: w[0], args: w.slice(1) }; }) }],
    toYaml: (v) => v.map((r) => printRecordWords(fields, r).join(" ")),
    jsonSchema: () => ({ type: "array", items: rec.jsonSchema() }),
  };
}

/** `keyword NAME { ... }` blocks collected by name (`vrrp_instance VI_1 { }`). */
export function named(spec: BlockSpec): Kind<Record<string, Doc>> {
  return {
    syntax: "NAME { ... }",
    yaml: `a mapping NAME: {${spec.name} keywords}`,
    nested: spec,
    repeat: "merge",
    keyedByName: true,
    fromConf(st, ctx) {
      const name = st.args[0];
      if (!name) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a name`, "a name before '{'");
        return undefined;
      }
      extraArgs(st.args.slice(1), ctx, `${st.keyword.text} ${name.text}`);
      if (!st.children) {
        ctx.diags.error(name.pos, `'${st.keyword.text} ${name.text}' needs a { } block`, "'{'");
        return undefined;
      }
      const doc: Doc = {};
      ctx.pos.set(doc, "", st.keyword.pos);
      interpretBlock(spec, st.children, ctx, doc);
      return { [name.text]: doc };
    },
    fromYaml(n, ctx) {
      if (n.kind !== "map") {
        ctx.diags.error(n.pos, `${spec.name}: expected a mapping of NAME: { keywords }`, "a mapping");
        return undefined;
      }
      const out: Record<string, Doc> = {};
      for (const e of n.entries) {
        const doc: Doc = {};
        ctx.pos.set(doc, "", e.keyPos);
        const r = interpretYamlBlock(spec, e.node, ctx, doc);
        if (r) out[e.key] = r;
      }
      return out;
    },
    // in place: copying the map for every new block made 1,000 instances quadratic
    // (duplicate names are reported by store)
    combine: (a, b) => Object.assign(a, b),
    toConf: (v) => Object.entries(v).map(([name, d]) => ({ args: [quoteWord(name)], children: printBlock(spec, d) })),
    toYaml: (v) => Object.fromEntries(Object.entries(v).map(([k, d]) => [k, blockToYaml(spec, d)])),
    jsonSchema: () => ({ type: "object", additionalProperties: blockJsonSchema(spec) }),
  };
}

/**
 * `keyword HEADER-ARGS { ... }` blocks kept as a list, the header fields merged into each entry
 * (`virtual_server 192.0.2.1 80 { }` → `{ ip, port, ...body }`). Repeats append.
 */
export function headed(header: FieldSpec[], spec: BlockSpec, syntax: string, requireBlock = true): Kind<Doc[]> {
  const headerNames = header.map((f) => f.name);
  return {
    syntax,
    yaml: headerNames.length
      ? `a list of mappings with ${headerNames.map((h) => `\`${h}\``).join(", ")} and ${spec.name} keywords (one mapping alone is also accepted)`
      : `a mapping of ${spec.name} keywords, or a list of them`,
    nested: spec,
    repeat: "append",
    fromConf(st, ctx) {
      const doc = parseRecordWords(header, st.args, ctx, st.keyword.text, st.keyword.pos) as Doc | undefined;
      if (!doc) return undefined;
      ctx.pos.set(doc, "", st.keyword.pos);
      if (!st.children) {
        if (requireBlock) {
          ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a { } block`, "'{'");
          return undefined;
        }
        return [doc];
      }
      interpretBlock(spec, st.children, ctx, doc);
      return [doc];
    },
    fromYaml(n, ctx) {
      const items = n.kind === "seq" ? n.items : [n];
      const out: Doc[] = [];
      for (const it of items) {
        if (it.kind !== "map") {
          ctx.diags.error(it.pos, `${spec.name}: expected a mapping`, `a mapping with ${headerNames.join(", ")}`);
          continue;
        }
        const headerNode: YNode = { ...it, entries: it.entries.filter((e) => headerNames.includes(e.key)) };
        const doc = recordFromYamlMap(header, headerNode, ctx, spec.name);
        if (!doc) continue;
        ctx.pos.set(doc, "", it.pos);
        if (interpretYamlBlock(spec, it, ctx, doc, headerNames)) out.push(doc);
      }
      return out;
    },
    combine(a, b) {
      for (const x of b) a.push(x); // in place, see named()
      return a;
    },
    toConf: (v) =>
      v.map((d) => {
        const body: Doc = {};
        for (const [k, x] of Object.entries(d)) if (!headerNames.includes(k)) body[k] = x;
        return { args: printRecordWords(header, d), children: printBlock(spec, body) };
      }),
    toYaml: (v) =>
      v.map((d) => {
        const out: Rec = {};
        for (const f of header) if (d[f.name] !== undefined) out[f.name] = f.scalar ? f.scalar.toYaml(d[f.name]) : d[f.name];
        return { ...out, ...blockToYaml(spec, d) };
      }),
    jsonSchema: () => {
      const h = recordJsonSchema(header);
      const b = blockJsonSchema(spec, h.properties as Rec);
      const one = { ...b, ...(h.required ? { required: h.required } : {}) };
      return { oneOf: [one, { type: "array", items: one }] };
    },
  };
}

/** The same block kind, repeatable: each occurrence appends one document (`url { }`, `TCP_CHECK { }`). */
export function repeated(spec: BlockSpec): Kind<Doc[]> {
  return headed([], spec, "{ ... } (repeatable)");
}
