/**
 * A minimal test harness for the tests that run inside the ipvs-vm, where there is no
 * `bun test`: the *.vm.ts files register cases with `test`, the compiled runner executes
 * them in order and prints a bun-test-style report. Imported by test/netns/ipvs-vm.test.ts
 * only for the list of names (nothing runs there).
 */

export interface VmCase {
  name: string;
  fn: () => void | Promise<void>;
  /** Why the case is skipped (registered, reported as skipped, never run). */
  skip?: string;
}

export interface VmResult {
  name: string;
  status: "pass" | "fail" | "skip";
  ms: number;
  error?: string;
  /** The skip reason. */
  reason?: string;
}

export interface VmTestOptions {
  /** Skip the case, with this reason. */
  skip?: string;
}

const cases: VmCase[] = [];
const beforeEachHooks: (() => void)[] = [];
const afterAllHooks: (() => void | Promise<void>)[] = [];
let currentFile = "";

/** Sets the prefix ("ipvs-api") for the names of the cases registered next. */
export function suite(name: string): void {
  currentFile = name;
}

/** Registers a case; its full name is "<suite> > <name>". `opts.skip` registers it as skipped, with a reason. */
export function test(name: string, fn: () => void | Promise<void>, opts: VmTestOptions = {}): void {
  const full = currentFile ? `${currentFile} > ${name}` : name;
  if (cases.some((c) => c.name === full)) throw new Error(`duplicate VM test name: ${full}`);
  cases.push({ name: full, fn, ...(opts.skip ? { skip: opts.skip } : {}) });
}

/** Runs once after every case (even after failures), in registration order: for shared labs that cases set up lazily. */
export function afterAll(fn: () => void | Promise<void>): void {
  afterAllHooks.push(fn);
}

/** Runs before every case (all suites share one kernel, so each hook resets what it owns). */
export function beforeEach(fn: () => void): void {
  beforeEachHooks.push(fn);
}

/** The names of every registered case, in order. */
export function registeredNames(): string[] {
  return cases.map((c) => c.name);
}

/** Every registered case's name and skip reason (if skipped), in order. */
export function registeredCases(): { name: string; skip?: string }[] {
  return cases.map((c) => ({ name: c.name, ...(c.skip ? { skip: c.skip } : {}) }));
}

/** Runs every case (or those whose name contains `filter`), printing `(pass) name [ms]` lines and a summary. */
export async function runAll(filter?: string): Promise<VmResult[]> {
  const results: VmResult[] = [];
  const t0 = performance.now();
  for (const c of cases) {
    if (filter && !c.name.includes(filter)) continue;
    if (c.skip) {
      results.push({ name: c.name, status: "skip", ms: 0, reason: c.skip });
      console.log(`(skip) ${c.name} — ${c.skip}`);
      continue;
    }
    const start = performance.now();
    let error: string | undefined;
    try {
      for (const h of beforeEachHooks) h();
      await c.fn();
    } catch (e) {
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    const ms = Math.round((performance.now() - start) * 100) / 100;
    results.push({ name: c.name, status: error ? "fail" : "pass", ms, ...(error ? { error } : {}) });
    console.log(`(${error ? "fail" : "pass"}) ${c.name} [${ms}ms]`);
    if (error) console.log(error.split("\n").map((l) => `    ${l}`).join("\n"));
  }
  for (const h of afterAllHooks) {
    try {
      await h();
    } catch (e) {
      console.log(`afterAll hook failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const pass = results.filter((r) => r.status === "pass").length;
  const skip = results.filter((r) => r.status === "skip").length;
  console.log("");
  console.log(` ${pass} pass`);
  if (skip) console.log(` ${skip} skip`);
  console.log(` ${results.length - pass - skip} fail`);
  console.log(`Ran ${results.length} tests in the VM. [${Math.round(performance.now() - t0)}ms]`);
  return results;
}
