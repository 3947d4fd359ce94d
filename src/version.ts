// Build identity: version, git revision and target triple. `scripts/build` bakes them in
// with `--define`; when run from source they are worked out at run time.

import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";

// Replaced by `bun build --define`; undeclared (hence the typeof guards) when run from source.
declare const VIPD_VERSION: string;
declare const VIPD_GIT_REV: string;
declare const VIPD_TARGET: string;

/** True in a binary made by `scripts/build` (the defines are present). */
export const compiled: boolean = typeof VIPD_TARGET !== "undefined";

const repoRoot = new URL("..", import.meta.url).pathname;

/** The package version, e.g. "0.1.0". */
export const version: string =
  typeof VIPD_VERSION !== "undefined" ? VIPD_VERSION : readPackageVersion();

/** Short git revision of the source, or "unknown". */
export const gitRev: string = typeof VIPD_GIT_REV !== "undefined" ? VIPD_GIT_REV : readGitRev();

/** Target this binary runs on, e.g. "linux-x64-gnu" or "linux-arm64-musl". */
export const target: string = typeof VIPD_TARGET !== "undefined" ? VIPD_TARGET : hostTarget();

/** The one-line identity `vipd version` prints. */
export function versionLine(): string {
  return `vipd ${version} (${gitRev}) ${target}`;
}

function readPackageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(repoRoot + "package.json", "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function readGitRev(): string {
  try {
    const r = spawnSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: repoRoot,
      encoding: "utf8",
      timeout: 2000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    const rev = r.status === 0 ? r.stdout.trim() : "";
    return /^[0-9a-f]{4,40}$/.test(rev) ? rev : "unknown";
  } catch {
    return "unknown"; // git not installed
  }
}

/** The running process's own target: OS, CPU and the libc it is linked against. */
export function hostTarget(): string {
  return `${process.platform}-${process.arch}-${hostLibc()}`;
}

/** "musl" or "gnu": the libc mapped into this very process (not merely installed). */
function hostLibc(): "gnu" | "musl" {
  try {
    const maps = readFileSync("/proc/self/maps", "utf8");
    if (/ld-musl-|libc\.musl-/.test(maps)) return "musl";
    if (/libc\.so\.6|ld-linux/.test(maps)) return "gnu";
  } catch {
    // no /proc: fall through to the loader check
  }
  return existsSync(`/lib/ld-musl-${process.arch === "x64" ? "x86_64" : "aarch64"}.so.1`) &&
    !existsSync("/lib64/ld-linux-x86-64.so.2") && !existsSync("/lib/ld-linux-aarch64.so.1")
    ? "musl"
    : "gnu";
}
