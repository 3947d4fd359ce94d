// The compiled binary from scripts/build ($VIPD_BIN): it exists, knows its identity, and
// starts the same from any directory, ignoring .env and bunfig.toml found there.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { hostTarget } from "../../src/version.ts";

const root = new URL("../..", import.meta.url).pathname;
const bin = process.env.VIPD_BIN ?? root + "dist/vipd";
const pkgVersion = (JSON.parse(await Bun.file(root + "package.json").text()) as { version: string }).version;

/** Runs the compiled binary in `cwd` and returns exit code, output and wall time. */
function runBin(args: string[], cwd: string): { code: number; stdout: string; stderr: string; ms: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync([bin, ...args], { cwd, stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return {
    code: r.exitCode ?? -1,
    stdout: r.stdout.toString(),
    stderr: r.stderr.toString(),
    ms: performance.now() - t0,
  };
}

const versionLine = new RegExp(
  `^vipd ${pkgVersion.replaceAll(".", "\\.")} \\(([0-9a-f]{4,40}|unknown)\\) ${hostTarget()}\\n$`,
);

describe("compiled vipd", () => {
  test("the binary exists and is a self-contained executable", () => {
    const st = statSync(bin);
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o111).not.toBe(0);
    expect(st.size).toBeGreaterThan(50 * 1024 * 1024); // Bun's runtime is inside
  });

  test("version prints the package version, a revision and the host target", () => {
    const r = runBin(["version"], root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(versionLine);
  });

  test("lazily loaded commands and errors work inside the bundle", () => {
    const help = runBin(["help"], root);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}version +print version/m);
    const bad = runBin(["no-such-command"], root);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("vipd: unknown command 'no-such-command'; run 'vipd help' for the list\n");
  });

  describe("started from a directory with a hostile .env and bunfig.toml", () => {
    const dir = mkdtempSync(tmpdir() + "/vipd-hostile-cwd-");
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // If bunfig.toml were read, the preload would print PRELOADED and exit 42.
    writeFileSync(dir + "/evil.js", 'console.log("PRELOADED"); process.exit(42);\n');
    writeFileSync(dir + "/bunfig.toml", 'preload = ["./evil.js"]\n[test]\nthis is = [not toml\n');
    // If .env were read, Bun would load all 4 GiB of it (sparse: no disk used): seconds and
    // gigabytes of RSS (measured: 3 GiB took 2.5 s and 3.1 GB) instead of milliseconds.
    writeFileSync(dir + "/.env", "");
    truncateSync(dir + "/.env", 4 * 1024 ** 3);
    writeFileSync(dir + "/.env.local", "VIPD_DEBUG=1\n");

    test("ignores them and starts quickly", () => {
      const r = runBin(["version"], dir);
      expect(r.stdout).not.toContain("PRELOADED");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(versionLine);
      expect(r.ms).toBeLessThan(1500);
    });
  });
});
