// Bounded mutation test of both config front-ends: random edits of every fixture (keepalived.conf
// and its YAML conversion) must only ever give structured diagnostics — no exception, every
// diagnostic with a file, a line and column ≥ 1, a severity and a message — in bounded time.
// A few hundred mutated files also go through the real CLI, which must exit with a documented
// code and print no stack trace.
//
// Seeds: a fixed one, plus one random seed printed in the output. VIPD_MUTATION_SEED=N replaces
// the random seed to replay a run; each case's edits depend only on (seed, case index).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Diagnostic } from "../../src/config/diagnostics.ts";
import { loadConfigText } from "../../src/config/load.ts";
import { type Case, makeCase, prng } from "./config-mutate.ts";

const ROOT = join(import.meta.dir, "../..");
const FIXED_SEED = 0x2c0ffee;
const RANDOM_SEED = process.env.VIPD_MUTATION_SEED !== undefined ? Number(process.env.VIPD_MUTATION_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const CASES_PER_SEED = 3000;
const CLI_CASES = 240;
const PER_CASE_MS = 2000;

console.log(`config-mutation: seeds ${FIXED_SEED} (fixed) and ${RANDOM_SEED} (random); replay with VIPD_MUTATION_SEED=${RANDOM_SEED}`);

/** What is wrong with one diagnostic's structure, or undefined. */
function badDiagnostic(d: Diagnostic): string | undefined {
  if (!d || typeof d !== "object") return "not an object";
  if (typeof d.pos?.file !== "string" || d.pos.file === "") return "no file";
  if (!Number.isInteger(d.pos.line) || d.pos.line < 1) return `line ${d.pos.line}`;
  if (!Number.isInteger(d.pos.col) || d.pos.col < 1) return `col ${d.pos.col}`;
  if (!["error", "warning", "info"].includes(d.severity)) return `severity ${d.severity}`;
  if (typeof d.message !== "string" || d.message.trim() === "") return "empty message";
  return undefined;
}

const label = (c: Case) => `seed ${c.seed} case ${c.index} (${c.source.name})`;

describe("config mutation", () => {
  for (const seed of [FIXED_SEED, RANDOM_SEED]) {
    test(`${CASES_PER_SEED} mutated configs (seed ${seed}) give only structured diagnostics, each case < ${PER_CASE_MS} ms`, () => {
      const failures: string[] = [];
      let slowest = 0;
      let withErrors = 0;
      for (let i = 0; i < CASES_PER_SEED; i++) {
        const c = makeCase(seed, i);
        const t0 = performance.now();
        try {
          const l = loadConfigText(c.text, c.source.path, { configId: c.source.configId, hostname: "testhost", env: {}, randomSeed: 1 });
          for (const d of l.diagnostics.items) {
            const why = badDiagnostic(d);
            if (why) failures.push(`${label(c)}: bad diagnostic (${why}): ${JSON.stringify(d)}`);
          }
          if (typeof l.model !== "object" || !Array.isArray(l.model.vrrp_instance)) failures.push(`${label(c)}: no model`);
          if (l.diagnostics.errors.length) withErrors++;
        } catch (e) {
          failures.push(`${label(c)}: threw ${(e as Error)?.stack ?? String(e)}`);
        }
        const ms = performance.now() - t0;
        slowest = Math.max(slowest, ms);
        if (ms > PER_CASE_MS) failures.push(`${label(c)}: took ${ms.toFixed(0)} ms`);
        if (failures.length >= 20) break;
      }
      expect(failures).toEqual([]);
      // the edits must actually break configs, or the test proves nothing
      expect(withErrors).toBeGreaterThan(CASES_PER_SEED / 4);
      console.log(`config-mutation: seed ${seed}: ${CASES_PER_SEED} cases, ${withErrors} with errors, slowest ${slowest.toFixed(1)} ms`);
    }, 60_000);
  }

  const dir = mkdtempSync(join(tmpdir(), "vipd-mutation-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test(`${CLI_CASES} mutated files through 'vipd check --offline': documented exit codes, no stack traces`, async () => {
    const rnd = prng(RANDOM_SEED ^ 0x51f15eed);
    const jobs: Array<{ c: Case; file: string }> = [];
    for (let k = 0; k < CLI_CASES; k++) {
      const seed = k % 2 ? RANDOM_SEED : FIXED_SEED;
      const c = makeCase(seed, Math.floor(rnd() * CASES_PER_SEED));
      // written as bytes: a real file, possibly with the non-UTF-8 bytes decoded to U+FFFD above
      const file = join(dir, `${k}-${c.source.name.replace(/\.conf(\.yaml)?$/, (_m, y) => (y ? ".yaml" : ".conf"))}`);
      writeFileSync(file, c.text);
      jobs.push({ c, file });
    }
    const failures: string[] = [];
    const codes = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const { c, file } = jobs[next++];
        const p = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "check", "--offline", "-f", file], {
          cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, VIPD_DEBUG: "" },
        });
        const kill = setTimeout(() => p.kill(), 10_000);
        const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited, new Response(p.stdout).text()]);
        clearTimeout(kill);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (![0, 3, 4, 5, 6].includes(code)) failures.push(`${label(c)} ${file}: exit ${code}\n${err.slice(0, 400)}`);
        if (/^\s+at \S/m.test(err) || /(^|\n)\w*Error:/.test(err) || err.includes("internal error"))
          failures.push(`${label(c)} ${file}: stack trace or internal error on stderr:\n${err.slice(0, 400)}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(failures).toEqual([]);
    expect(codes.size).toBeGreaterThan(1); // broken and clean files both occur
    console.log(`config-mutation: CLI exit codes ${JSON.stringify(Object.fromEntries(codes))}`);
  }, 120_000);
});
