/**
 * IPVS on a real IPVS kernel: runs scripts/ipvs-vm-tests once (one VM boot, every
 * test/ipvs/*.vm.ts inside) and reports each in-VM case as its own test here, so the suite
 * counts them. Also: on this host's kernel (no IP_VS), Ipvs.open() says "unavailable".
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IPVS_UNAVAILABLE_MESSAGE, Ipvs } from "../../ffi/ipvs.ts";
import { withNetns } from "../../ffi/netns.ts";
import { registeredCases } from "../ipvs/harness.ts";
import type { VmResult } from "../ipvs/harness.ts";

const root = join(import.meta.dir, "../..");
const vmDir = process.env.IPVS_VM_DIR ?? join(root, "../shared/tools/ipvs-vm");
const isRoot = process.getuid?.() === 0;

// The case names come from the suites themselves (registering runs nothing).
for (const f of readdirSync(join(root, "test/ipvs")).filter((n) => n.endsWith(".vm.ts")).sort()) {
  await import(join(root, "test/ipvs", f));
}
const cases = registeredCases();
const names = cases.map((c) => c.name);

/** Why the VM cannot boot on this host, or null when it can (qemu present, or root to install it). */
function cannotBoot(): string | null {
  if (!existsSync(join(vmDir, "run.sh"))) return `no ipvs-vm tool at ${vmDir}`;
  if (Bun.which("qemu-system-x86_64")) return null;
  if (isRoot && Bun.which("apt-get")) return null; // build.sh installs qemu
  return "qemu-system-x86_64 is not installed (neither KVM nor TCG can boot the VM)";
}
const skipReason = !isRoot ? "needs root" : cannotBoot();
if (skipReason) console.warn(`test/netns/ipvs-vm.test.ts: IPVS VM tests SKIPPED: ${skipReason}`);

describe.skipIf(skipReason !== null)("IPVS in the VM (scripts/ipvs-vm-tests, one boot)", () => {
  let rc = -1;
  let output = "";
  let results: VmResult[] = [];
  const tmp = mkdtempSync(join(tmpdir(), "vipd-ipvs-vm-"));

  beforeAll(() => {
    const r = Bun.spawnSync([join(root, "scripts/ipvs-vm-tests"), "--results", join(tmp, "results.json")], {
      stdout: "pipe", stderr: "pipe", env: { ...process.env },
    });
    rc = r.exitCode ?? -1;
    output = r.stdout.toString() + r.stderr.toString();
    if (existsSync(join(tmp, "results.json"))) results = JSON.parse(readFileSync(join(tmp, "results.json"), "utf8")) as VmResult[];
    const timing = output.split("\n").find((l) => l.startsWith("ipvs-vm-tests: compile"));
    if (timing) console.log(timing);
  }, 660_000);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test("the VM booted, ran every case and printed a bun-test-style summary", () => {
    if (results.length === 0) throw new Error(`scripts/ipvs-vm-tests exited ${rc} without results:\n${output}`);
    expect(results.map((r) => r.name)).toEqual(names);
    const failed = results.filter((r) => r.status === "fail").length;
    const passed = results.filter((r) => r.status === "pass").length;
    expect(output).toMatch(new RegExp(`^ ${passed} pass$`, "m"));
    expect(output).toMatch(new RegExp(`^ ${failed} fail$`, "m"));
    expect(rc).toBe(failed === 0 ? 0 : 1);
  });

  for (const { name, skip } of cases) {
    if (skip) {
      // Skipped inside the VM too (the runner reports it as such); the reason is printed here.
      console.warn(`[vm] ${name}: SKIPPED: ${skip}`);
      test.skip(`[vm] ${name}`, () => {});
      continue;
    }
    test(`[vm] ${name}`, () => {
      const r = results.find((x) => x.name === name);
      if (!r) throw new Error(`not run in the VM (exit ${rc})`);
      if (r.status !== "pass") throw new Error(r.error ?? "failed");
      expect(r.status).toBe("pass");
    });
  }
});

describe.skipIf(!isRoot)("IPVS on this host's kernel", () => {
  const ns = `vipdt-ipvs-${process.pid}`;
  beforeAll(() => {
    Bun.spawnSync(["ip", "netns", "add", ns]);
  });
  afterAll(() => {
    Bun.spawnSync(["ip", "netns", "del", ns]);
  });

  test("Ipvs.open() returns 'unavailable' with one clear message when the kernel has no IPVS family", () => {
    const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
    const kernelHasIpvs = existsSync("/proc/net/ip_vs") || existsSync(`/lib/modules/${release}/kernel/net/netfilter/ipvs`);
    const r = withNetns(ns, () => Ipvs.open());
    if (kernelHasIpvs) {
      // A host with IPVS: open works and the family resolves (the VM tests cover the rest).
      expect(r.ok).toBe(true);
      if (r.ok) r.ipvs.close();
      return;
    }
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe("unavailable");
    expect(r.message).toBe(IPVS_UNAVAILABLE_MESSAGE);
    expect(r.message).toContain('no generic netlink family "IPVS"');
    expect((r.error as { code?: string }).code).toBe("ENOENT");
  });
});
