// The release from `scripts/build --all` (issue 6 item 8), built once into a scratch directory
// (`--out`, so dist/ and the suite's dist/vipd are not touched) with gzip level 1 for speed:
// SHA256SUMS verifies, every tarball holds exactly the expected files (the binary, packaging,
// example configs, INSTALL, LICENSE) matching their sources, the host tarball's binary runs,
// and each binary is an ELF for its CPU with its libc's dynamic loader.
// Cross targets need Bun's runtime for that target: the first run on a machine downloads it
// from the npm registry (cached in ~/.bun after), hence the long hook timeout.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { hostTarget } from "../../src/version.ts";

const root = new URL("../..", import.meta.url).pathname;
const version = (JSON.parse(readFileSync(root + "package.json", "utf8")) as { version: string }).version;
const TARGETS = ["linux-x64-gnu", "linux-x64-musl", "linux-arm64-gnu", "linux-arm64-musl"] as const;
type Target = (typeof TARGETS)[number];
const host = hostTarget();

/** Packaging files every tarball carries, by their path in the tarball and in the repository. */
const PACKAGING = [
  "packaging/systemd/vipd.service",
  "packaging/alpine/vipd.initd",
  "packaging/alpine/vipd.confd",
  "packaging/openwrt/vipd.init",
  "packaging/openwrt/vipd.config",
];
const EXPECTED_FILES = ["INSTALL", "LICENSE", "keepalived.conf.example", "vipd", "vipd.yaml.example", ...PACKAGING].sort();

const out = mkdtempSync(tmpdir() + "/vipd-release-");
const tarName = (t: Target) => `vipd-${version}-${t}`;
let build = { code: -1, stdout: "", stderr: "" };

/** Runs a command to completion; output as text. */
function run(cmd: string[], cwd = out, timeout = 60_000): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", timeout });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** One `tar -v` line: mode string, owner/group, size and path. */
interface TarEntry { mode: string; owner: string; size: number; path: string }

const unpacked = new Map<Target, { dir: string; entries: TarEntry[] }>();

/** Unpacks a tarball once into the scratch directory, listing it in the same pass. */
function unpack(t: Target): { dir: string; entries: TarEntry[] } {
  let u = unpacked.get(t);
  if (!u) {
    const dir = `${out}/unpacked-${t}`;
    expect(run(["mkdir", dir]).code).toBe(0);
    const r = run(["tar", "--numeric-owner", "-xvvzf", `${tarName(t)}.tar.gz`, "-C", dir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const entries = r.stdout.trim().split("\n").map((line) => {
      const m = /^(\S+)\s+(\d+\/\d+)\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
      if (!m) throw new Error(`unexpected tar line: ${line}`);
      return { mode: m[1]!, owner: m[2]!, size: Number(m[3]), path: m[4]! };
    });
    u = { dir: `${dir}/${tarName(t)}`, entries };
    unpacked.set(t, u);
  }
  return u;
}

/** The bytes of one member of a tarball. */
function member(t: Target, path: string): Buffer {
  return readFileSync(`${unpack(t).dir}/${path}`);
}

/** e_machine and the PT_INTERP path of a 64-bit little-endian ELF file. */
function elfInfo(path: string): { machine: number; interp: string } {
  const head = Buffer.alloc(1 << 16); // the ELF and program headers are at the start
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  expect(head.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  expect(head[4]).toBe(2); // ELFCLASS64
  expect(head[5]).toBe(1); // little endian
  const machine = head.readUInt16LE(18);
  const phoff = Number(head.readBigUInt64LE(32));
  const phentsize = head.readUInt16LE(54), phnum = head.readUInt16LE(56);
  let interp = "";
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (head.readUInt32LE(ph) !== 3) continue; // PT_INTERP
    const off = Number(head.readBigUInt64LE(ph + 8)), size = Number(head.readBigUInt64LE(ph + 32));
    interp = head.subarray(off, off + size).toString("latin1").replace(/\0+$/, "");
  }
  return { machine, interp };
}

/** Drops what names the file a config came from (path, format, source positions). */
function withoutOrigin(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutOrigin);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (["path", "format", "files"].includes(k)) continue;
      if (x && typeof x === "object" && "file" in x && "line" in x) continue;
      o[k] = withoutOrigin(x);
    }
    return o;
  }
  return v;
}

describe("scripts/build --all: the release", () => {
  beforeAll(async () => {
    const p = Bun.spawn([root + "scripts/build", "--all", "--out", out], {
      cwd: root,
      env: { ...process.env, VIPD_GZIP_LEVEL: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const killer = setTimeout(() => p.kill("SIGKILL"), 280_000);
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(killer);
    build = { code, stdout, stderr };
  }, 300_000);

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test("the build succeeds and reports every binary and tarball", () => {
    if (build.code !== 0) console.error(build.stdout, build.stderr);
    expect(build.code).toBe(0);
    for (const t of TARGETS) {
      expect(build.stdout).toContain(`${out}/vipd-${t} `);
      expect(build.stdout).toContain(`${out}/${tarName(t)}.tar.gz `);
    }
    expect(build.stdout).toContain(`${out}/SHA256SUMS (8 files`);
    // Nothing half-written or staged is left behind.
    expect(run(["sh", "-c", "ls -A | grep '^\\.' || true"]).stdout).toBe("");
  });

  test("SHA256SUMS covers the four tarballs and four binaries and verifies", () => {
    const lines = readFileSync(`${out}/SHA256SUMS`, "utf8").trim().split("\n");
    expect(lines.map((l) => l.replace(/^[0-9a-f]{64} {2}/, ""))).toEqual([
      ...TARGETS.map((t) => `${tarName(t)}.tar.gz`),
      ...TARGETS.map((t) => `vipd-${t}`),
    ]);
    const check = run(["sha256sum", "--strict", "-c", "SHA256SUMS"]);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
    expect(check.stdout.trim().split("\n").filter((l) => l.endsWith(": OK"))).toHaveLength(8);
    // The hashes are of these files: one recomputed here.
    const [hash, name] = lines[0]!.split("  ");
    const h = new Bun.CryptoHasher("sha256").update(readFileSync(`${out}/${name}`)).digest("hex");
    expect(h).toBe(hash!);
  }, 60_000);

  for (const t of TARGETS) {
    test(`${tarName(t)}.tar.gz holds exactly the expected files`, () => {
      const entries = unpack(t).entries;
      const top = `${tarName(t)}/`;
      for (const e of entries) {
        expect(e.path.startsWith(top)).toBe(true);
        expect(e.owner).toBe("0/0");
        expect(e.mode).not.toMatch(/^.{5}w|^.{8}w/); // not group- or world-writable
      }
      const files = entries.filter((e) => e.mode.startsWith("-")).map((e) => e.path.slice(top.length)).sort();
      expect(files).toEqual(EXPECTED_FILES);
      const byPath = new Map(entries.map((e) => [e.path.slice(top.length), e]));
      for (const exe of ["vipd", "packaging/alpine/vipd.initd", "packaging/openwrt/vipd.init"]) {
        expect(byPath.get(exe)!.mode).toStartWith("-rwxr-xr-x");
      }
      // The binary is the one SHA256SUMS lists for this target.
      expect(byPath.get("vipd")!.size).toBe(statSync(`${out}/vipd-${t}`).size);
      const sums = readFileSync(`${out}/SHA256SUMS`, "utf8");
      const inner = new Bun.CryptoHasher("sha256").update(member(t, "vipd")).digest("hex");
      expect(sums).toContain(`${inner}  vipd-${t}\n`);
      // Packaging, example and licence are the repository's files, unchanged.
      for (const p of [...PACKAGING, "LICENSE"]) expect(member(t, p).toString()).toBe(readFileSync(root + p, "utf8"));
      expect(member(t, "keepalived.conf.example").toString()).toBe(readFileSync(root + "examples/keepalived-pair-a.conf", "utf8"));
      // INSTALL names this version and target and covers the three init systems and the symlink.
      const install = member(t, "INSTALL").toString();
      expect(install.split("\n")[0]).toMatch(new RegExp(`^vipd ${version.replaceAll(".", "\\.")} \\(([0-9a-f]{4,40}|unknown)\\) for ${t}$`));
      expect(install).not.toContain("@");
      for (const s of ["systemctl enable --now vipd", "rc-update add vipd default", "/etc/init.d/vipd enable", "ln -s /usr/sbin/vipd /usr/sbin/keepalived", "apk add libstdc++", "libstdcpp"]) {
        expect(install).toContain(s);
      }
    }, 60_000);
  }

  describe("the host tarball", () => {
    test(`is for this host (${host}); its vipd runs and reads both example configs as the same config`, () => {
      expect(TARGETS as readonly string[]).toContain(host);
      const t = host as Target;
      const d = unpack(t).dir;
      const v = run([`${d}/vipd`, "version"], d);
      expect(v.stderr).toBe("");
      expect(v.code).toBe(0);
      const m = /^vipd (\S+) \((\S+)\) (\S+)\n$/.exec(v.stdout);
      expect(m).not.toBeNull();
      expect(m![1]).toBe(version);
      expect(m![3]).toBe(t);
      // INSTALL carries the revision the binary was built from.
      expect(readFileSync(`${d}/INSTALL`, "utf8")).toStartWith(`vipd ${version} (${m![2]}) for ${t}\n`);

      // vipd.yaml.example is `vipd convert --to yaml` of keepalived.conf.example: both load
      // (exit 0 or 5 = warnings only, as keepalived -t) and resolve to the same model.
      const models = ["keepalived.conf.example", "vipd.yaml.example"].map((f) => {
        const c = run([`${d}/vipd`, "check", "--offline", "-q", "-f", f], d);
        expect([0, 5]).toContain(c.code);
        const dump = run([`${d}/vipd`, "dump-config", "-f", f], d);
        expect(dump.code).toBe(0);
        return JSON.parse(dump.stdout) as { format: string };
      });
      expect(models.map((x) => x.format)).toEqual(["keepalived", "yaml"]);
      expect(withoutOrigin(models[1])).toEqual(withoutOrigin(models[0]));
    }, 60_000);
  });

  // The aarch64 glibc binary, run by qemu-user with Debian's aarch64 glibc: the bundle boots,
  // parses configs, and reaches libc through bun:ffi (SIGRTMIN comes from libc). qemu-user does
  // not translate every netlink request, so the daemon itself is not run this way.
  const QEMU = "/usr/bin/qemu-aarch64-static", ARM_ROOT = "/usr/aarch64-linux-gnu";
  test.skipIf(!existsSync(QEMU) || !existsSync(`${ARM_ROOT}/lib/ld-linux-aarch64.so.1`))("the linux-arm64-gnu binary runs (qemu-user): version, check, libc through FFI", () => {
    const arm = (...args: string[]) => run([QEMU, "-L", ARM_ROOT, `${out}/vipd-linux-arm64-gnu`, ...args], root, 120_000);
    const v = arm("version");
    expect(v.stderr).toBe("");
    expect(v.stdout).toMatch(/^vipd \S+ \(\w+\) linux-arm64-gnu\n$/);
    expect(v.stdout).toStartWith(`vipd ${version} `);
    const c = arm("check", "-f", "test/fixtures/configs/01-basic-master.conf");
    expect(c.code).toBe(0);
    expect(c.stdout).toContain("1 vrrp_instance(s), 1 virtual address(es)");
    const bad = arm("check", "-f", "test/fixtures/invalid/" + readdirSync(`${root}test/fixtures/invalid`).filter((f) => f.endsWith(".conf")).sort()[0]!);
    expect(bad.code).not.toBe(0);
    // SIGRTMIN+2 (34+2 with glibc): read from the aarch64 libc through dlopen + FFI
    const sig = arm("keepalived", "--signum=JSON");
    expect({ code: sig.code, out: sig.stdout.trim() }).toEqual({ code: 0, out: "36" });
  }, 300_000);

  test("each binary is an ELF for its CPU with its libc's loader", () => {
    const expected: Record<Target, { machine: number; interp: string; file: string }> = {
      "linux-x64-gnu": { machine: 62, interp: "/lib64/ld-linux-x86-64.so.2", file: "x86-64" },
      "linux-x64-musl": { machine: 62, interp: "/lib/ld-musl-x86_64.so.1", file: "x86-64" },
      "linux-arm64-gnu": { machine: 183, interp: "/lib/ld-linux-aarch64.so.1", file: "ARM aarch64" },
      "linux-arm64-musl": { machine: 183, interp: "/lib/ld-musl-aarch64.so.1", file: "ARM aarch64" },
    };
    const hasFile = run(["sh", "-c", "command -v file"]).code === 0;
    for (const t of TARGETS) {
      expect({ target: t, ...elfInfo(`${out}/vipd-${t}`) }).toEqual({ target: t, machine: expected[t].machine, interp: expected[t].interp });
      // file(1) agrees, where installed (scripts/setup does not install it).
      if (hasFile) {
        const f = run(["file", "-b", `${out}/vipd-${t}`]);
        expect(f.stdout).toStartWith("ELF 64-bit LSB executable, " + expected[t].file);
        expect(f.stdout).toContain(`interpreter ${expected[t].interp}`);
      }
    }
  });
});
