/** The YAML front-end: YAML text → the same document the keepalived front-end produces. */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import type { Diagnostics, SourcePos } from "./diagnostics.ts";
import { type Ctx, type Doc, interpretYamlBlock, type YNode } from "./schema/kinds.ts";
import { rootSpec } from "./schema/root.ts";

function toYNode(node: unknown, file: string, lc: LineCounter, fallback: SourcePos): YNode {
  const posOf = (n: unknown): SourcePos => {
    const range = (n as { range?: [number, number, number] } | null)?.range;
    if (!range) return fallback;
    const p = lc.linePos(range[0]);
    return { file, line: p.line, col: p.col };
  };
  const pos = posOf(node);
  if (isMap(node)) {
    return {
      kind: "map",
      value: undefined,
      pos,
      items: [],
      entries: node.items.map((pair) => {
        const k = pair.key as YamlNode | null;
        const keyPos = posOf(k);
        const key = isScalar(k) ? String(k.value) : String(k);
        return { key, keyPos, node: toYNode(pair.value, file, lc, keyPos) };
      }),
    };
  }
  if (isSeq(node)) return { kind: "seq", value: undefined, pos, entries: [], items: node.items.map((i) => toYNode(i, file, lc, pos)) };
  if (isScalar(node)) {
    if (node.value === null) return { kind: "null", value: null, pos, entries: [], items: [] };
    return { kind: "scalar", value: node.value, pos, entries: [], items: [] };
  }
  return { kind: "null", value: null, pos, entries: [], items: [] };
}

/** Parses YAML config text into a root document; syntax and schema errors go to ctx.diags. */
export function readYamlText(text: string, file: string, ctx: Ctx): Doc {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const origin: SourcePos = { file, line: 1, col: 1 };
  // without prettyErrors the yaml package leaves linePos unset; map the offset ourselves
  const at = (e: { pos: [number, number] }): SourcePos => {
    const p = lc.linePos(Math.max(0, Math.min(e.pos[0], text.length)));
    return { file, line: Math.max(1, p.line), col: Math.max(1, p.col) };
  };
  for (const e of doc.errors) ctx.diags.error(at(e), `YAML: ${e.message.split("\n")[0]}`, undefined, true);
  for (const w of doc.warnings) ctx.diags.warning(at(w), `YAML: ${w.message.split("\n")[0]}`);
  if (doc.errors.length) return {};
  const root: Doc = {};
  ctx.pos.set(root, "", origin);
  return interpretYamlBlock(rootSpec, toYNode(doc.contents, file, lc, origin), ctx, root) ?? {};
}

export type { Diagnostics };
