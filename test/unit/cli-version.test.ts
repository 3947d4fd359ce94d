// The CLI entry run from source: `version`, `help`, and how it refuses unknown commands.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { hostTarget } from "../../src/version.ts";

const root = new URL("../..", import.meta.url).pathname;
const main = root + "src/main.ts";

/** Runs `bun src/main.ts ...args` and returns its exit code and output. */
function vipd(...args: string[]): { code: number; stdout: string; stderr: string } {
  return run([main, ...args]);
}

function run(bunArgs: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([process.execPath, ...bunArgs], {
    cwd: root,
    env: { ...process.env, VIPD_DEBUG: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const pkgVersion = (JSON.parse(await Bun.file(root + "package.json").text()) as { version: string }).version;

describe("vipd version (from source)", () => {
  test("prints version, git revision and the host target on one line", () => {
    const r = vipd("version");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const m = /^vipd (\S+) \((\S+)\) (\S+)\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(m![1]).toBe(pkgVersion);
    expect(m![3]).toBe(hostTarget());
    const git = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: root });
    if (git.exitCode === 0) expect(m![2]).toBe(git.stdout.toString().trim());
  });

  test("--version is an alias", () => {
    expect(vipd("--version").stdout).toBe(vipd("version").stdout);
  });

  test("rejects arguments with exit 2", () => {
    const r = vipd("version", "extra");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unexpected argument 'extra'");
  });

  test("hostTarget names OS, CPU and libc", () => {
    expect(hostTarget()).toMatch(/^linux-(x64|arm64)-(gnu|musl)$/);
    expect(hostTarget().split("-")[1]).toBe(process.arch);
  });
});

describe("vipd help", () => {
  for (const args of [["help"], ["-h"], ["--help"]]) {
    test(`${args.join(" ")} lists the commands and exits 0`, () => {
      const r = vipd(...args);
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith("usage: vipd <command>");
      expect(r.stdout).toMatch(/^ {2}version +print version/m);
      expect(r.stdout).toMatch(/^ {2}help +list commands/m);
    });
  }

  test("no command prints usage to stderr and exits 2", () => {
    const r = vipd();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toStartWith("usage: vipd <command>");
  });
});

describe("unknown commands", () => {
  test("exit 2 with a one-line message naming the command", () => {
    const r = vipd("frobnicate", "--x");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("vipd: unknown command 'frobnicate'; run 'vipd help' for the list\n");
  });

  test("object prototype names are not commands", () => {
    for (const name of ["constructor", "__proto__", "toString"]) {
      const r = vipd(name);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`unknown command '${name}'`);
    }
  });
});

describe("internal errors", () => {
  // A preload makes stdout throw, so `vipd version` fails the way a bug would.
  const dir = mkdtempSync(tmpdir() + "/vipd-cli-test-");
  const preload = dir + "/throwing-stdout.ts";
  writeFileSync(preload, 'process.stdout.write = () => { throw new Error("boom\\nsecond line"); };\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("print one line, no stack, exit 1", () => {
    const r = run(["--preload", preload, main, "version"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("vipd: internal error: boom\n");
  });

  test("VIPD_DEBUG=1 adds the stack trace", () => {
    const r = run(["--preload", preload, main, "version"], { VIPD_DEBUG: "1" });
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("vipd: internal error: boom\n");
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});
