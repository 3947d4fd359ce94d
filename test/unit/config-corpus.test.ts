// The fixture corpus: every positive config parses without errors and survives both conversion
// round trips; every negative config gives its expected diagnostics at the expected line:col.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { formatDiagnostic } from "../../src/config/diagnostics.ts";
import { toKeepalived, toYaml } from "../../src/config/emit.ts";
import { type Loaded, loadConfig, loadConfigText } from "../../src/config/load.ts";

const FIX = join(import.meta.dir, "../fixtures");
const positives = readdirSync(join(FIX, "configs")).filter((f) => f.endsWith(".conf")).sort();
const negatives = readdirSync(join(FIX, "invalid")).filter((f) => f.endsWith(".conf")).sort();

function configId(text: string): string | undefined {
  return /^# config-id:\s*(\S+)/m.exec(text)?.[1];
}

/** The model without source positions and raw documents, for equality across formats. */
function comparable(l: Loaded): unknown {
  return JSON.parse(JSON.stringify(l.model, (k, v) => (k === "pos" || k === "doc" ? undefined : v)));
}

const load = (file: string) => {
  const path = join(FIX, "configs", file);
  const text = readFileSync(path, "utf8");
  return loadConfig(path, { configId: configId(text), hostname: "testhost", env: {} });
};

describe("positive fixtures", () => {
  test("the corpus has at least 30 configs", () => {
    expect(positives.length).toBeGreaterThanOrEqual(30);
  });

  for (const f of positives) {
    test(`${f}: parses and validates without errors`, () => {
      const l = load(f);
      const errors = l.diagnostics.errors.map(formatDiagnostic);
      expect(errors).toEqual([]);
      expect(l.model.vrrp_instance.length + l.model.virtual_server.length).toBeGreaterThan(0);
    });

    test(`${f}: keepalived → YAML → keepalived gives the same model, and YAML → keepalived → YAML the same YAML`, () => {
      const l1 = load(f);
      const yaml1 = toYaml(l1.doc);
      const l2 = loadConfigText(yaml1, `${f}.yaml`, { hostname: "testhost", format: "yaml" });
      expect(l2.diagnostics.errors.map(formatDiagnostic)).toEqual([]);
      const conf2 = toKeepalived(l2.doc);
      const l3 = loadConfigText(conf2, `${f}.round.conf`, { hostname: "testhost", format: "keepalived", env: {} });
      expect(l3.diagnostics.errors.map(formatDiagnostic)).toEqual([]);
      expect(comparable(l2)).toEqual(comparable(l1));
      expect(comparable(l3)).toEqual(comparable(l1));
      expect(toYaml(l3.doc)).toBe(yaml1);
    });
  }
});

describe("negative fixtures", () => {
  test("at least 20 negative fixtures", () => {
    expect(negatives.length).toBeGreaterThanOrEqual(20);
  });

  for (const f of negatives) {
    const path = join(FIX, "invalid", f);
    const text = readFileSync(path, "utf8");
    const expects = [...text.matchAll(/^# expect: (error|warning) (\d+):(\d+) (.+)$/gm)];
    test(`${f}: ${expects.map((e) => `${e[1]} ${e[2]}:${e[3]} '${e[4]}'`).join("; ")}`, () => {
      expect(expects.length).toBeGreaterThan(0);
      const l = loadConfig(path, { configId: configId(text), hostname: "testhost", env: {} });
      for (const [, severity, line, col, needle] of expects) {
        const hit = l.diagnostics.items.find(
          (d) => d.severity === severity && d.pos.line === Number(line) && d.pos.col === Number(col) && formatDiagnostic(d).includes(needle),
        );
        if (!hit) throw new Error(`no ${severity} at ${line}:${col} containing '${needle}'; got:\n${l.diagnostics.items.map(formatDiagnostic).join("\n")}`);
        expect(hit.pos.file).toBe(path);
      }
    });
  }
});
