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
import { type Case, makeCase, prng } from "./config-mutate.ts";
import type { CaseReport } from "./config-mutation-worker.ts";

const ROOT = join(import.meta.dir, "../..");
const FIXED_SEED = 0x2c0ffee;
const RANDOM_SEED = process.env.VIPD_MUTATION_SEED !== undefined ? Number(process.env.VIPD_MUTATION_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const CASES_PER_SEED = 3000;
const CLI_CASES = 200;
const PER_CASE_MS = 2000;

console.log(`config-mutation: seeds ${FIXED_SEED} (fixed) and ${RANDOM_SEED} (random); replay with VIPD_MUTATION_SEED=${RANDOM_SEED}`);

const label = (c: Case) => `seed ${c.seed} case ${c.index} (${c.source.name})`;

interface SeedResult {
  failures: string[];
  withErrors: number;
  slowest: number;
}

/**
 * Runs cases [0, count) of `seed` in a worker; a case that takes longer than PER_CASE_MS is a
 * failure, and its worker is killed and replaced so one runaway case cannot stall the suite.
 */
async function runSeed(seed: number, count: number): Promise<SeedResult> {
  const res: SeedResult = { failures: [], withErrors: 0, slowest: 0 };
  let next = 0;
  while (next < count && res.failures.length < 20) {
    const from = next;
    await new Promise<void>((done) => {
      const w = new Worker(new URL("./config-mutation-worker.ts", import.meta.url).href);
      let started = 0;
      let current = -1;
      const finish = () => {
        clearInterval(watchdog);
        w.terminate();
        done();
      };
      const watchdog = setInterval(() => {
        if (current >= 0 && performance.now() - started > PER_CASE_MS) {
          res.failures.push(`${label(makeCase(seed, current))}: still running after ${PER_CASE_MS} ms (killed)`);
          next = current + 1;
          finish();
        }
      }, 100);
      w.onmessage = (ev: MessageEvent<CaseReport>) => {
        const r = ev.data;
        if (r.starting) {
          current = r.index;
          started = performance.now();
          return;
        }
        current = -1;
        next = r.index + 1;
        const ms = r.ms ?? 0;
        res.slowest = Math.max(res.slowest, ms);
        if (r.hadErrors) res.withErrors++;
        for (const p of r.problems ?? []) res.failures.push(`${label(makeCase(seed, r.index))}: ${p}`);
        if (ms > PER_CASE_MS) res.failures.push(`${label(makeCase(seed, r.index))}: took ${ms.toFixed(0)} ms`);
        if (next >= count || res.failures.length >= 20) finish();
      };
      w.onerror = (e) => {
        res.failures.push(`worker crashed near case ${current} of seed ${seed}: ${e.message}`);
        next = Math.max(next, current + 1);
        finish();
      };
      w.postMessage({ seed, from, to: count });
    });
  }
  return res;
}

describe("config mutation", () => {
  for (const seed of [FIXED_SEED, RANDOM_SEED]) {
    test(`${CASES_PER_SEED} mutated configs (seed ${seed}) give only structured diagnostics, each case < ${PER_CASE_MS} ms`, async () => {
      const r = await runSeed(seed, CASES_PER_SEED);
      console.log(`config-mutation: seed ${seed}: ${CASES_PER_SEED} cases, ${r.withErrors} with errors, slowest ${r.slowest.toFixed(1)} ms`);
      expect(r.failures).toEqual([]);
      // the edits must actually break configs, or the test proves nothing
      expect(r.withErrors).toBeGreaterThan(CASES_PER_SEED / 4);
    }, 90_000);
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
