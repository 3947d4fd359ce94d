/**
 * Random, reproducible edits of the config fixtures for the mutation test (and for replaying one
 * case by hand: `makeCase(seed, index).text`).
 */
import { readdirSync, readFileSync } from "node:fs";
import { prng } from "../../src/prng.ts";
export { prng };
import { join } from "node:path";
import { toYaml } from "../../src/config/emit.ts";
import { loadConfig } from "../../src/config/load.ts";

const FIX = join(import.meta.dir, "../fixtures/configs");


export interface Source {
  name: string;
  /** Where the text pretends to live: includes resolve relative to it, and `.yaml` selects YAML. */
  path: string;
  text: string;
  configId?: string;
}

export const sources: Source[] = [];
for (const f of readdirSync(FIX).filter((x) => x.endsWith(".conf")).sort()) {
  const path = join(FIX, f);
  const text = readFileSync(path, "utf8");
  const configId = /^# config-id:\s*(\S+)/m.exec(text)?.[1];
  sources.push({ name: f, path, text, configId });
  const yamlText = toYaml(loadConfig(path, { configId, hostname: "testhost", env: {} }).doc);
  sources.push({ name: `${f}.yaml`, path: join(FIX, `${f}.yaml`), text: yamlText });
}

// Fragments that stress the lexer, preprocessor and YAML parser.
const FRAGMENTS = [
  "{", "}", "{ }", '"', "'", "\\", "$", "$X", "${X}", "$X=1\n", "${_ENV HOME}", "${_RANDOM}", "@", "@^", "@host ", "~SEQ(", "~SEQ(i,1,3) ",
  "~LST(", "include ", "include *\n", "includem ", "#", "!", "\n", "\r\n", "\t", " ", "\u0000", "\ufffd", "\ud800", "é", ":", ": ", "- ",
  "[", "]", "&a ", "*a", "|", ">", "%", "---\n", "? ", "0x", "-1", "999999999999", "1e9", "true", "null", "~", "vrrp_instance ", "virtual_server ",
];
const WORDS = [...new Set(sources.flatMap((s) => s.text.split(/\s+/)).filter((w) => w.length > 0 && w.length < 40))].sort();

/** One random edit of `text` (which may contain non-UTF-8 bytes as U+FFFD after decoding). */
export function mutateOnce(text: string, rnd: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
  const at = () => Math.floor(rnd() * (text.length + 1));
  const lines = text.split("\n");
  const line = () => Math.floor(rnd() * lines.length);
  switch (Math.floor(rnd() * 11)) {
    case 0: // delete a line
      lines.splice(line(), 1);
      return lines.join("\n");
    case 1: {
      // duplicate a line
      const i = line();
      lines.splice(i, 0, lines[i]);
      return lines.join("\n");
    }
    case 2: {
      // swap two lines
      const i = line();
      const j = line();
      [lines[i], lines[j]] = [lines[j], lines[i]];
      return lines.join("\n");
    }
    case 3:
    case 4: {
      // insert a fragment
      const p = at();
      return text.slice(0, p) + pick(FRAGMENTS) + text.slice(p);
    }
    case 5: {
      // delete 1..16 characters
      const p = at();
      return text.slice(0, p) + text.slice(p + 1 + Math.floor(rnd() * 16));
    }
    case 6: {
      // insert raw bytes that are not valid UTF-8, decoded the way readFileSync(…, "utf8") does
      const p = Buffer.byteLength(text.slice(0, at()));
      const buf = Buffer.from(text);
      const bad = Buffer.from([pick([0xff, 0xfe, 0xc3, 0x80, 0xed, 0xf8]), pick([0xa0, 0x28, 0xff, 0x00, 0x41])]);
      return Buffer.concat([buf.subarray(0, p), bad, buf.subarray(p)]).toString("utf8");
    }
    case 7: {
      // a very long token
      const p = at();
      return text.slice(0, p) + pick(["A", "9", "{", '"', "$", "x."]).repeat(1000 + Math.floor(rnd() * 20000)) + text.slice(p);
    }
    case 8: // truncate
      return text.slice(0, at());
    case 9: {
      // replace a word with another word of the corpus (keyword in the wrong place, value for keyword, …)
      const ws = [...text.matchAll(/\S+/g)];
      if (!ws.length) return pick(WORDS);
      const m = pick(ws);
      return text.slice(0, m.index) + pick(WORDS) + text.slice(m.index + m[0].length);
    }
    default: {
      // change indentation of a line (YAML structure, keepalived is indifferent)
      const i = line();
      lines[i] = rnd() < 0.5 ? lines[i].replace(/^\s{1,4}/, "") : " ".repeat(1 + Math.floor(rnd() * 4)) + lines[i];
      return lines.join("\n");
    }
  }
}

export interface Case {
  seed: number;
  index: number;
  source: Source;
  text: string;
}

/** Case `index` of `seed`: a source and 1..4 edits, reproducible from the pair alone. */
export function makeCase(seed: number, index: number): Case {
  const rnd = prng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const source = sources[Math.floor(rnd() * sources.length)];
  let text = source.text;
  const edits = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < edits; k++) text = mutateOnce(text, rnd);
  return { seed, index, source, text };
}

