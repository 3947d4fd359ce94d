/**
 * Worker for the config mutation test: loads mutated configs in order and reports each case, so
 * the test's main thread can kill it when one case runs too long (a synchronous loop cannot be
 * interrupted otherwise). Message in: {seed, from, to}. Messages out: one CaseReport per case.
 */
import type { Diagnostic } from "../../src/config/diagnostics.ts";
import { loadConfigText } from "../../src/config/load.ts";
import { makeCase } from "./config-mutate.ts";

declare const self: Worker;

export interface CaseReport {
  index: number;
  /** Set when the worker is about to start this case (for the watchdog). */
  starting?: true;
  ms?: number;
  problems?: string[];
  hadErrors?: boolean;
}

/** What is wrong with one diagnostic's structure, or undefined. */
export function badDiagnostic(d: Diagnostic): string | undefined {
  if (!d || typeof d !== "object") return "not an object";
  if (typeof d.pos?.file !== "string" || d.pos.file === "") return "no file";
  if (!Number.isInteger(d.pos.line) || d.pos.line < 1) return `line ${d.pos.line}`;
  if (!Number.isInteger(d.pos.col) || d.pos.col < 1) return `col ${d.pos.col}`;
  if (!["error", "warning", "info"].includes(d.severity)) return `severity ${d.severity}`;
  if (typeof d.message !== "string" || d.message.trim() === "") return "empty message";
  return undefined;
}

self.onmessage = (ev: MessageEvent<{ seed: number; from: number; to: number }>) => {
  const { seed, from, to } = ev.data;
  for (let i = from; i < to; i++) {
    const c = makeCase(seed, i);
    self.postMessage({ index: i, starting: true } satisfies CaseReport);
    const problems: string[] = [];
    let hadErrors = false;
    const t0 = performance.now();
    try {
      const l = loadConfigText(c.text, c.source.path, { configId: c.source.configId, hostname: "testhost", env: {}, randomSeed: 1 });
      for (const d of l.diagnostics.items) {
        const why = badDiagnostic(d);
        if (why && problems.length < 3) problems.push(`bad diagnostic (${why}): ${JSON.stringify(d).slice(0, 300)}`);
      }
      if (typeof l.model !== "object" || !Array.isArray(l.model.vrrp_instance)) problems.push("no model");
      hadErrors = l.diagnostics.errors.length > 0;
    } catch (e) {
      problems.push(`threw ${(e as Error)?.stack?.split("\n").slice(0, 4).join(" | ") ?? String(e)}`);
    }
    self.postMessage({ index: i, ms: performance.now() - t0, problems, hadErrors } satisfies CaseReport);
  }
};
