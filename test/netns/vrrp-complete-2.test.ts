/**
 * Issue 4 on the wire with the compiled vipd (part 2): a sync group moves together (crash and
 * a member's tracked interface); unicast across two L2 segments joined by a routing namespace
 * (no multicast on the wire); the VMAC MAC as the source of adverts and GARPs; virtual_routes
 * only on the master across a failover and back; the notify FIFO's ordered events read by a
 * reader process; an alert email received by a real SMTP server (aiosmtpd) in the lab.
 * Each test has its own lab and they run concurrently (advert_int 0.1, VRRPv3).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { adverts, hasAddress, killAll, Proc, TestEnv, wallMs, waitFor, type Vipd, type WireFrame } from "./daemon.ts";
import { addDummy, addVeth, instanceStatus, setLink, shellScript, tempDir, waitStatus } from "./daemon-extra.ts";
import { createLab, run } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const PYTHON = "/usr/bin/python3";
const HAVE_AIOSMTPD = ROOT && existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import aiosmtpd"]).exitCode === 0;
const WAIT_MS = 8000;
const dirs: string[] = [];

afterAll(() => {
  killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dir(tag: string): string {
  const d = tempDir(tag);
  dirs.push(d);
  return d;
}

interface Inst {
  name?: string;
  ifname?: string;
  vrid?: number;
  priority: number;
  vip: string;
  extra?: string[];
}

/** One vrrp_instance block (state BACKUP, v3, advert_int 0.1). */
function inst(i: Inst): string {
  const ifname = i.ifname ?? "eth0";
  return [
    `vrrp_instance ${i.name ?? "VI_1"} {`,
    "    state BACKUP",
    `    interface ${ifname}`,
    "    version 3",
    `    virtual_router_id ${i.vrid ?? 51}`,
    `    priority ${i.priority}`,
    "    advert_int 0.1",
    "    virtual_ipaddress {",
    `        ${i.vip}`,
    "    }",
    ...(i.extra ?? []).map((l) => `    ${l}`),
    "}",
    "",
  ].join("\n");
}

function globals(routerId: string, extra: string[] = []): string {
  return ["global_defs {", `    router_id ${routerId}`, "    script_user root", ...extra.map((l) => `    ${l}`), "}", ""].join("\n");
}

function expectClean(v: Vipd): void {
  expect(v.problemLines().filter((l) => /ERROR|WARNING|cannot/i.test(l))).toEqual([]);
}

const vrrpFrames = (frames: WireFrame[]) => adverts(frames);

describe.skipIf(!ROOT)("issue 4 sync groups, unicast, VMAC, routes, FIFO, email (compiled vipd, netns)", () => {
  test.concurrent("a sync group moves together: a member's tracked interface down → both FAULT and both move (INSTANCE and GROUP lines in the FIFO); a crash → both move", async () => {
    const e = new TestEnv(createLab({ purpose: "vcsync", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      addVeth(e.ns("a"), "eth1", e.ns("b"), "eth1", "198.51.100.1/24", "198.51.100.2/24");
      addDummy(e.ns("a"), "trk0");
      const VIP1 = "192.0.2.100";
      const VIP2 = "198.51.100.100";
      const group = ["vrrp_sync_group G1 {", "    group {", "        VI_1", "        VI_2", "    }", "}", ""].join("\n");
      const d = dir("syncfifo");
      const fifo = join(d, "fifo");
      const cfg = (prio: number, track: boolean) => globals(`r${prio}`, track ? [`notify_fifo ${fifo}`] : []) + group +
        inst({ name: "VI_1", ifname: "eth0", vrid: 51, priority: prio, vip: `${VIP1}/24` }) +
        inst({ name: "VI_2", ifname: "eth1", vrid: 52, priority: prio, vip: `${VIP2}/24`, extra: track ? ["track_interface {", "    trk0", "}"] : [] });
      const A = e.vipd("a", cfg(200, true));
      await waitFor(() => existsSync(fifo), WAIT_MS, "the FIFO");
      const reader = new Proc("fifo reader", ["cat", fifo]);
      for (const n of ["VI_1", "VI_2"]) await waitStatus(A, "MASTER", WAIT_MS, n);
      const B = e.vipd("b", cfg(100, false));
      for (const n of ["VI_1", "VI_2"]) await waitStatus(B, "BACKUP", WAIT_MS, n);

      // Only VI_2 tracks trk0; the group takes VI_1 to FAULT with it, and b takes both.
      setLink(e.ns("a"), "trk0", false);
      for (const n of ["VI_1", "VI_2"]) await waitStatus(A, "FAULT", WAIT_MS, n);
      for (const n of ["VI_1", "VI_2"]) await waitStatus(B, "MASTER", WAIT_MS, n);
      await waitFor(() => [VIP1, VIP2].every((v) => hasAddress(e.ns("b"), v) && !hasAddress(e.ns("a"), v)), 2000, "both VIPs on b only");

      setLink(e.ns("a"), "trk0", true);
      for (const n of ["VI_1", "VI_2"]) await waitStatus(A, "MASTER", WAIT_MS, n);
      for (const n of ["VI_1", "VI_2"]) await waitStatus(B, "BACKUP", WAIT_MS, n);
      await waitFor(() => [VIP1, VIP2].every((v) => hasAddress(e.ns("a"), v) && !hasAddress(e.ns("b"), v)), 2000, "both VIPs back on a");

      // The FIFO: each group transition as both members' INSTANCE lines, then the GROUP line.
      const want = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"];
      const lines = await waitFor(() => {
        const l = reader.lines.map((x) => x.line);
        return l.filter((x) => x.startsWith("GROUP")).length >= want.length ? l : undefined;
      }, 3000, () => `GROUP lines in the FIFO (${reader.text})`);
      const blocks: string[][] = [[]];
      for (const l of lines) {
        blocks.at(-1)!.push(l);
        if (l.startsWith("GROUP")) blocks.push([]);
      }
      expect(blocks.slice(0, want.length).map((b) => b.at(-1))).toEqual(want.map((st) => `GROUP "G1" ${st} 0`));
      blocks.slice(0, want.length).forEach((b, i) => expect(b.slice(0, -1).sort()).toEqual([`INSTANCE "VI_1" ${want[i]} 200`, `INSTANCE "VI_2" ${want[i]} 200`]));
      await reader.stop("SIGKILL", 1000);
      const t0 = wallMs();
      A.kill("SIGKILL");
      await Promise.all(["VI_1", "VI_2"].map((n) => waitStatus(B, "MASTER", WAIT_MS, n)));
      console.log(`sync group: b MASTER for both members ${(wallMs() - t0).toFixed(0)} ms after a was killed`);
      expect([VIP1, VIP2].every((v) => hasAddress(e.ns("b"), v))).toBe(true);
      expect(A.lines.some((l) => /G1/.test(l.line))).toBe(true); // the group logged its transition
      expectClean(B);
    } finally {
      await e.close();
    }
  }, 40_000);

  test.concurrent("a VIP or virtual route deleted by someone else makes the MASTER step down and win it back; deleted static addresses and routes are reinstated", async () => {
    const e = new TestEnv(createLab({ purpose: "vcdel", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      const VIP = "192.0.2.100";
      const statics = ["static_ipaddress {", "    203.0.113.5/24 dev eth0", "}", "static_routes {", "    203.0.113.128/25 via 192.0.2.254 dev eth0", "}", ""].join("\n");
      const vroutes = ["virtual_routes {", "    198.51.100.0/24 via 192.0.2.254 dev eth0", "}"];
      const A = e.vipd("a", globals("da") + statics + inst({ priority: 200, vip: `${VIP}/24 dev eth0`, extra: vroutes }));
      await waitStatus(A, "MASTER", WAIT_MS);
      const B = e.vipd("b", globals("db") + inst({ priority: 100, vip: `${VIP}/24 dev eth0` }));
      await waitStatus(B, "BACKUP", WAIT_MS);
      expect(hasAddress(e.ns("a"), "203.0.113.5")).toBe(true);

      const before = A.lines.length;
      run(["ip", "-n", e.ns("a"), "addr", "del", `${VIP}/24`, "dev", "eth0"]);
      await A.waitLine(/virtual address 192\.0\.2\.100\/24 was removed from eth0 by someone else: leaving MASTER/, WAIT_MS, before);
      await A.waitLine(/Entering BACKUP STATE/, WAIT_MS, before);
      // a new election: a (priority 200) preempts b back and re-adds the VIP
      await A.waitLine(/Entering MASTER STATE/, WAIT_MS, before);
      await waitFor(() => hasAddress(e.ns("a"), VIP), WAIT_MS, "the VIP back on a");
      await waitStatus(B, "BACKUP", WAIT_MS);
      expect(hasAddress(e.ns("b"), VIP)).toBe(false);

      run(["ip", "-n", e.ns("a"), "addr", "del", "203.0.113.5/24", "dev", "eth0"]);
      await A.waitLine(/static_ipaddress 203\.0\.113\.5\/24 dev eth0 was removed by someone else: reinstated/, WAIT_MS, before);
      await waitFor(() => hasAddress(e.ns("a"), "203.0.113.5"), WAIT_MS, "the static address reinstated");

      // routes: a deleted static route is reinstated; a deleted virtual route makes the master step down and win it back
      const route = (dst: string) => run(["ip", "-n", e.ns("a"), "route", "show", dst]).stdout.trim();
      await waitFor(() => route("198.51.100.0/24") !== "", WAIT_MS, "the virtual route on the master");
      expect(route("203.0.113.128/25")).toMatch(/proto (18|keepalived)/);
      const mark = A.lines.length;
      run(["ip", "-n", e.ns("a"), "route", "del", "203.0.113.128/25"]);
      await A.waitLine(/static route 203\.0\.113\.128\/25 .*was removed by someone else: reinstated/, WAIT_MS, mark);
      await waitFor(() => route("203.0.113.128/25") !== "", WAIT_MS, "the static route reinstated");
      run(["ip", "-n", e.ns("a"), "route", "del", "198.51.100.0/24"]);
      await A.waitLine(/\(VI_1\) virtual route 198\.51\.100\.0\/24 .*was removed by someone else/, WAIT_MS, mark);
      await A.waitLine(/Entering BACKUP STATE/, WAIT_MS, mark);
      await A.waitLine(/Entering MASTER STATE/, WAIT_MS, mark);
      await waitFor(() => route("198.51.100.0/24") !== "", WAIT_MS, "the virtual route back on the master");
      expectClean(A);
      expectClean(B);
    } finally {
      await e.close();
    }
  }, 40_000);

  test.concurrent("a reload that adds the first tracked static route starts watching route deletions: the route is reinstated", async () => {
    const e = new TestEnv(createLab({ purpose: "vcrtrl", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      const base = globals("rr") + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0" });
      const A = e.vipd("a", base);
      await waitStatus(A, "MASTER", WAIT_MS);
      writeFileSync(A.configPath, base + ["static_routes {", "    203.0.113.128/25 via 192.0.2.254 dev eth0", "}", ""].join("\n"));
      const mark = A.lines.length;
      A.kill("SIGHUP");
      await A.waitLine(/Reloaded/, WAIT_MS, mark);
      const route = () => run(["ip", "-n", e.ns("a"), "route", "show", "203.0.113.128/25"]).stdout.trim();
      await waitFor(() => route() !== "", WAIT_MS, "the static route added by the reload");
      run(["ip", "-n", e.ns("a"), "route", "del", "203.0.113.128/25"]);
      await A.waitLine(/static route 203\.0\.113\.128\/25 .*was removed by someone else: reinstated/, WAIT_MS, mark);
      await waitFor(() => route() !== "", WAIT_MS, "the static route reinstated");
      expectClean(A);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("disable_local_igmp: net.ipv4.igmp_link_local_mcast_reports is 0 while vipd runs in the namespace, back to 1 after it stops", async () => {
    const e = new TestEnv(createLab({ purpose: "vcigmp", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      const path = "/proc/sys/net/ipv4/igmp_link_local_mcast_reports";
      const value = () => run(["ip", "netns", "exec", e.ns("a"), "cat", path]).stdout.trim();
      expect(value()).toBe("1");
      const A = e.vipd("a", globals("ig", ["disable_local_igmp"]) + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0", extra: ["use_vmac"] }));
      await waitStatus(A, "MASTER", WAIT_MS);
      expect(value()).toBe("0");
      expect(run(["cat", path]).stdout.trim()).toBe("1"); // the root namespace's own switch is untouched
      expect(await A.stop("SIGTERM", 5000)).toBe(0);
      expect(value()).toBe("1");
      expectClean(A);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("interface_up_down_delays: a link flap shorter than the down delay leaves the MASTER alone; a longer one is a FAULT", async () => {
    const e = new TestEnv(createLab({ purpose: "vcdeb", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      // advert_int 0.5 (v3): the down delay cap is (3 − 1) × 0.5 s; 0.8 s stands
      const delays = ["interface_up_down_delays {", "    eth0 0.8 0.2", "}", ""].join("\n");
      const A = e.vipd("a", globals("db") + delays + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0" }).replace("advert_int 0.1", "advert_int 0.5"));
      await waitStatus(A, "MASTER", WAIT_MS);
      const mark = A.lines.length;
      const link = (state: "up" | "down") => run(["ip", "-n", e.ns("a"), "link", "set", "eth0", state]);
      link("down");
      await Bun.sleep(200);
      link("up");
      await A.waitLine(/Delay timer for eth0 cancelled/, WAIT_MS, mark);
      expect((await instanceStatus(A))?.state).toBe("MASTER");
      expect(A.lines.slice(mark).some((l) => /Entering FAULT STATE|interface eth0 is down/.test(l.line))).toBe(false);
      // a real outage: FAULT after the delay, then back
      link("down");
      await A.waitLine(/Entering FAULT STATE/, WAIT_MS, mark);
      link("up");
      await waitStatus(A, "MASTER", WAIT_MS);
      // while a down link is being debounced the MASTER keeps advertising, and the kernel refuses
      // (no route on a down link): those errors, and nothing else
      const problems = A.problemLines().filter((l) => /ERROR|WARNING|cannot/i.test(l));
      expect(problems.filter((l) => !/send-advert failed: sendto\(224\.0\.0\.18\): ENETUNREACH/.test(l))).toEqual([]);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("track_group: the instance is FAULT while its static entry's interface is down; the static route comes back with the link", async () => {
    const e = new TestEnv(createLab({ purpose: "vctg", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      addVeth(e.ns("a"), "eth1", e.ns("b"), "eth1", "198.51.100.1/24", "198.51.100.2/24");
      const statics = ["track_group TG {", "    group {", "        VI_1", "    }", "}",
        "static_routes {", "    203.0.113.0/24 via 198.51.100.2 dev eth1 track_group TG", "}", ""].join("\n");
      const A = e.vipd("a", globals("tg") + statics + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0" }));
      await waitStatus(A, "MASTER", WAIT_MS);
      const route = () => run(["ip", "-n", e.ns("a"), "route", "show", "203.0.113.0/24"]).stdout.trim();
      expect(route()).toContain("via 198.51.100.2 dev eth1");
      run(["ip", "-n", e.ns("a"), "link", "set", "eth1", "down"]);
      const st = await waitStatus(A, "FAULT", WAIT_MS);
      expect(st.faults).toContain("track_group interface eth1 down");
      expect(hasAddress(e.ns("a"), "192.0.2.100")).toBe(false);
      expect(route()).toBe(""); // the kernel dropped it with the link
      run(["ip", "-n", e.ns("a"), "link", "set", "eth1", "up"]);
      await waitStatus(A, "MASTER", WAIT_MS);
      await waitFor(() => route().includes("via 198.51.100.2 dev eth1"), WAIT_MS, "the static route back with the link");
      expectClean(A);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("startup_script runs (and finishes) before any instance starts; a hung one is killed at its timeout; shutdown_script runs after the stop", async () => {
    const e = new TestEnv(createLab({ purpose: "vcss", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    const d = dir("startstop");
    try {
      const marks = join(d, "marks");
      const startup = shellScript(join(d, "startup.sh"), `echo "startup $(ip -o addr show dev eth0 | grep -c 192.0.2.100)" >> ${marks}`);
      const shutdown = shellScript(join(d, "shutdown.sh"), `echo "shutdown $(ip -o addr show dev eth0 | grep -c 192.0.2.100)" >> ${marks}`);
      const hung = shellScript(join(d, "hung.sh"), `echo hung >> ${marks}; sleep 37.123`);
      const cfg = (up: string, extra: string[] = []) => globals("ss", [`startup_script ${up}`, `shutdown_script ${shutdown}`, ...extra]) + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0" });
      const A = e.vipd("a", cfg(startup));
      await waitStatus(A, "MASTER", WAIT_MS);
      const ran = A.lines.findIndex((l) => /Running startup script/.test(l.line));
      const first = A.lines.findIndex((l) => /\(VI_1\) Entering/.test(l.line));
      expect(ran).toBeGreaterThanOrEqual(0);
      expect(ran).toBeLessThan(first);
      expect(await A.stop("SIGTERM", 5000)).toBe(0);
      // startup saw no VIP yet; shutdown ran after the VIP was removed
      expect(readFileSync(marks, "utf8").trim().split("\n")).toEqual(["startup 0", "shutdown 0"]);

      // a startup script that never ends is killed after startup_script_timeout; the daemon starts anyway
      const B = e.vipd("a", cfg(hung, ["startup_script_timeout 1"]));
      await B.waitLine(/startup script .*hung\.sh timed out after 1 s and was killed/, WAIT_MS);
      await waitStatus(B, "MASTER", WAIT_MS);
      // the script and its child are gone (the whole process group was killed)
      expect(run(["pgrep", "-f", join(d, "hung.sh")], true).stdout.trim()).toBe("");
      expect(run(["pgrep", "-f", "sleep 37.123"], true).stdout.trim()).toBe("");
      expect(await B.stop("SIGTERM", 5000)).toBe(0);
    } finally {
      await e.close();
    }
  }, 40_000);

  test.concurrent("umask (global_defs): the pid file and what notify scripts create get the configured mode", async () => {
    const e = new TestEnv(createLab({ purpose: "vcum", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    const d = dir("umask");
    try {
      expect(process.umask() & 0o077).not.toBe(0o077); // the test's own umask would leave group/other bits
      const made = join(d, "made-by-notify");
      const notify = shellScript(join(d, "notify.sh"), `echo master > ${made}`);
      const A = e.vipd("a", globals("um", ["umask IRWXG|IRWXO"]) + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0", extra: [`notify_master ${notify}`] }));
      await waitStatus(A, "MASTER", WAIT_MS);
      await waitFor(() => existsSync(made), WAIT_MS, "the notify script's file");
      expect(statSync(A.pidFile).mode & 0o777).toBe(0o600);
      expect(statSync(made).mode & 0o777).toBe(0o600);
      expectClean(A);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("reload_file is created for a reload's reading of the configuration and removed after it; a stale one is removed at start", async () => {
    const e = new TestEnv(createLab({ purpose: "vcrf", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    const d = dir("reloadfile");
    let tracer: Bun.Subprocess | undefined;
    try {
      const flag = join(d, "reloading"), trace = join(d, "trace");
      writeFileSync(flag, "");
      const A = e.vipd("a", globals("rf", [`reload_file ${flag}`]) + inst({ priority: 200, vip: "192.0.2.100/24 dev eth0" }));
      await waitStatus(A, "MASTER", WAIT_MS);
      expect(existsSync(flag)).toBe(false); // the stale one went at start
      // the reload is too quick to see the file from outside: watch the daemon's own system calls
      const pid = Number(readFileSync(A.pidFile, "utf8").trim());
      tracer = Bun.spawn(["strace", "-f", "-qq", "-e", "trace=openat,unlink,unlinkat,rmdir", "-o", trace, "-p", String(pid)], { stdout: "ignore", stderr: "ignore" });
      await Bun.sleep(500); // attached
      const mark = A.lines.length;
      A.kill("SIGHUP");
      await A.waitLine(/Reloaded .* 1 kept/, WAIT_MS, mark);
      tracer.kill("SIGINT");
      await tracer.exited;
      const calls = readFileSync(trace, "utf8").split("\n").filter((l) => l.includes(flag));
      const created = calls.findIndex((l) => /openat\(.*O_CREAT/.test(l));
      const removed = calls.findIndex((l) => /unlink/.test(l));
      expect(created).toBeGreaterThanOrEqual(0);
      expect(removed).toBeGreaterThan(created);
      expect(existsSync(flag)).toBe(false);
    } finally {
      tracer?.kill("SIGKILL");
      await e.close();
    }
  }, 30_000);

  test.concurrent("dynamic_interfaces: an instance on an interface created after start waits for it, then elects and adds its VIP", async () => {
    const e = new TestEnv(createLab({ purpose: "vcdyn", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    try {
      const A = e.vipd("a", globals("dy", ["dynamic_interfaces"]) + inst({ ifname: "eth1", priority: 200, vip: "198.51.100.100/24 dev eth1" }));
      await A.waitLine(/\(VI_1\) interface eth1 does not exist yet - waiting for it \(dynamic_interfaces\)/, WAIT_MS);
      expect((await A.status()).instances).toEqual([]);
      // the interface arrives (created, addressed, up), as a VLAN or tunnel configured after boot would
      addVeth(e.ns("a"), "eth1", e.ns("b"), "eth1", "198.51.100.1/24", "198.51.100.2/24");
      await A.waitLine(/\(VI_1\) interface eth1 appeared - starting/, WAIT_MS);
      await waitStatus(A, "MASTER", WAIT_MS);
      await waitFor(() => hasAddress(e.ns("a"), "198.51.100.100"), WAIT_MS, "the VIP on eth1");
      const problems = A.problemLines().filter((l) => /ERROR|WARNING|cannot/i.test(l));
      expect(problems).toEqual([]);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("unicast across two L2 segments joined by a routing namespace: election, failover, preemption; no multicast", async () => {
    // a — r on 192.0.2.0/24, r — b on 198.51.100.0/24; r forwards.
    const e1 = new TestEnv(createLab({ purpose: "vcuni1", nodes: ["a", "r"], v4: "192.0.2.0/24" }));
    const e2 = new TestEnv(createLab({ purpose: "vcuni2", nodes: ["b", "r2"], v4: "198.51.100.0/24" }));
    try {
      const rNs = e1.ns("r");
      // r2's end of the second segment moves into r, so r joins both.
      run(["ip", "-n", e2.ns("r2"), "link", "set", "eth0", "netns", rNs, "name", "eth1"]);
      run(["ip", "-n", rNs, "addr", "add", "198.51.100.2/24", "dev", "eth1"]);
      run(["ip", "-n", rNs, "link", "set", "eth1", "up"]);
      run(["ip", "netns", "exec", rNs, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      run(["ip", "-n", e1.ns("a"), "route", "add", "default", "via", "192.0.2.2"]);
      run(["ip", "-n", e2.ns("b"), "route", "add", "default", "via", "198.51.100.2"]);
      expect(e1.lab.exec("a", ["ping", "-n", "-q", "-c", "1", "-W", "2", "198.51.100.1"], true).code).toBe(0);

      const VIP = "203.0.113.10";
      const uni = (src: string, peer: string) => [`unicast_src_ip ${src}`, "unicast_peer {", `    ${peer}`, "}"];
      const capA = await e1.capture("a");
      const capB = await e2.capture("b");
      const A = e1.vipd("a", globals("ua") + inst({ priority: 200, vip: `${VIP}/32 dev eth0`, extra: uni("192.0.2.1", "198.51.100.1") }));
      await waitStatus(A, "MASTER", WAIT_MS);
      const B = e2.vipd("b", globals("ub") + inst({ priority: 100, vip: `${VIP}/32 dev eth0`, extra: uni("198.51.100.1", "192.0.2.1") }));
      const sb = await waitStatus(B, "BACKUP", WAIT_MS);
      await Bun.sleep(500);
      expect(sb.masterAddress ?? (await instanceStatus(B))!.masterAddress).toBe("192.0.2.1");
      expect(hasAddress(e1.ns("a"), VIP)).toBe(true);
      expect(hasAddress(e2.ns("b"), VIP)).toBe(false);

      // crash a: b takes over; a restarted preempts back
      const t0 = wallMs();
      A.kill("SIGKILL");
      await waitStatus(B, "MASTER", WAIT_MS);
      const took = wallMs() - t0;
      await A.exited;
      run(["ip", "-n", e1.ns("a"), "addr", "del", `${VIP}/32`, "dev", "eth0"], true); // left by the crash
      const A2 = e1.vipd("a", globals("ua") + inst({ priority: 200, vip: `${VIP}/32 dev eth0`, extra: uni("192.0.2.1", "198.51.100.1") }));
      await waitStatus(A2, "MASTER", WAIT_MS);
      await waitStatus(B, "BACKUP", WAIT_MS);
      console.log(`unicast through a router: b MASTER ${took.toFixed(0)} ms after a was SIGKILLed`);

      const fa = vrrpFrames(capA.frames());
      const fb = vrrpFrames(capB.frames());
      // Adverts from both sides crossed the router (TTL 254 on arrival) and nothing went to 224.0.0.18.
      expect(fa.some((f) => f.src === "192.0.2.1" && f.dst === "198.51.100.1" && f.ttl === 255)).toBe(true);
      expect(fb.some((f) => f.src === "192.0.2.1" && f.dst === "198.51.100.1" && f.ttl === 254)).toBe(true);
      expect(fb.some((f) => f.src === "198.51.100.1" && f.dst === "192.0.2.1" && f.advert.priority === 100)).toBe(true);
      expect(fa.some((f) => f.src === "198.51.100.1" && f.ttl === 254)).toBe(true);
      expect([...fa, ...fb].filter((f) => f.dst.startsWith("224."))).toEqual([]);
      for (const v of [A2, B]) {
        const s = (await instanceStatus(v))!;
        expect(s.stats.ip_ttl_err ?? 0).toBe(0);
        expect(s.stats.unicast_src_err ?? 0).toBe(0);
      }
      expectClean(B);
      expectClean(A2);
    } finally {
      await e1.close();
      await e2.close();
    }
  }, 40_000);

  test.concurrent("check_unicast_src: adverts from an unlisted source are dropped and counted; unicast_fault_no_peer with no peer means FAULT", async () => {
    const e = new TestEnv(createLab({ purpose: "vcucs", nodes: ["a", "b", "c"], v4: "192.0.2.0/24" }));
    try {
      const VIP = "192.0.2.100";
      const uni = (src: string, peers: string[], extra: string[] = []) => [`unicast_src_ip ${src}`, "unicast_peer {", ...peers.map((p) => `    ${p}`), "}", ...extra];
      const A = e.vipd("a", globals("ua") + inst({ priority: 150, vip: `${VIP}/24`, extra: uni("192.0.2.1", ["192.0.2.2"]) }));
      await waitStatus(A, "MASTER", WAIT_MS);
      const B = e.vipd("b", globals("ub") + inst({ priority: 100, vip: `${VIP}/24`, extra: uni("192.0.2.2", ["192.0.2.1"], ["check_unicast_src"]) }));
      await waitStatus(B, "BACKUP", WAIT_MS);
      // c claims the VRID at priority 200 towards b only; it is not one of b's peers
      const C = e.vipd("c", globals("uc") + inst({ priority: 200, vip: `${VIP}/24`, extra: uni("192.0.2.3", ["192.0.2.2"]) }) +
        inst({ name: "VI_LONE", vrid: 52, priority: 100, vip: "192.0.2.200/24", extra: ["unicast_peer {", "}", "unicast_fault_no_peer"] }));
      await waitStatus(C, "MASTER", WAIT_MS);
      const lone = await waitStatus(C, "FAULT", WAIT_MS, "VI_LONE");
      expect(lone.faults).not.toEqual([]);
      await Bun.sleep(1000); // 10 of c's adverts reached b
      const sb = (await instanceStatus(B))!;
      expect(sb.state).toBe("BACKUP");
      expect(sb.masterAddress).toBe("192.0.2.1");
      expect(sb.stats.unicast_src_err).toBeGreaterThanOrEqual(5);
      expect((await instanceStatus(A))!.state).toBe("MASTER");
      expect(hasAddress(e.ns("b"), VIP)).toBe(false);
      expect(hasAddress(e.ns("c"), "192.0.2.200")).toBe(false);
    } finally {
      await e.close();
    }
  }, 40_000);

  test.concurrent("VMAC: adverts and GARPs from 00:00:5e:00:01:33 on the wire; virtual_routes only on the master, across a failover and back", async () => {
    const e = new TestEnv(createLab({ purpose: "vcvmac", nodes: ["a", "b", "c"], v4: "192.0.2.0/24" }));
    try {
      const VIP = "192.0.2.100";
      const cfg = (prio: number) => globals(`r${prio}`) + inst({
        priority: prio, vip: `${VIP}/24`,
        extra: ["use_vmac", "virtual_routes {", "    198.51.100.0/24 via 192.0.2.254", "    203.0.113.0/24 via 192.0.2.254 table 100", "}"],
      });
      interface IpRoute { dst: string; gateway?: string; table?: string; protocol?: string }
      const ours = (node: string): string[] => {
        const j = JSON.parse(e.lab.exec(node, ["ip", "-j", "route", "show", "table", "all"]).stdout || "[]") as IpRoute[];
        return j.filter((r) => r.gateway === "192.0.2.254").map((r) => `${r.dst}${r.table ? `@${r.table}` : ""}`).sort();
      };
      const both = ["198.51.100.0/24", "203.0.113.0/24@100"];
      const cap = await e.capture("c"); // the pcap keeps the Ethernet header (what tcpdump -e shows)
      const A = e.vipd("a", cfg(200));
      await waitStatus(A, "MASTER", WAIT_MS);
      const B = e.vipd("b", cfg(100));
      await waitStatus(B, "BACKUP", WAIT_MS);
      expect(ours("a")).toEqual(both);
      expect(ours("b")).toEqual([]);

      // graceful stop of a: b takes the routes
      const t0 = wallMs();
      expect(await A.stop()).toBe(0);
      await waitStatus(B, "MASTER", WAIT_MS);
      const took = wallMs() - t0;
      await waitFor(() => JSON.stringify(ours("b")) === JSON.stringify(both), 2000, "routes on b");
      expect(ours("a")).toEqual([]);

      // a returns and preempts: the routes go back
      const A2 = e.vipd("a", cfg(200), { dir: A.dir });
      await waitStatus(A2, "MASTER", WAIT_MS);
      await waitStatus(B, "BACKUP", WAIT_MS);
      await waitFor(() => JSON.stringify(ours("a")) === JSON.stringify(both) && ours("b").length === 0, 2000, "routes back on a only");
      console.log(`VMAC + routes: b MASTER ${took.toFixed(0)} ms after a's graceful stop`);

      const frames = cap.frames();
      const vmac = "00:00:5e:00:01:33";
      const ads = adverts(frames, 51).filter((f) => f.advert.priority > 0);
      expect(ads.length).toBeGreaterThan(10);
      expect([...new Set(ads.map((f) => f.srcMac))]).toEqual([vmac]);
      const garps = frames.filter((f) => f.kind === "arp" && f.arp.senderIp === VIP);
      expect(garps.length).toBeGreaterThanOrEqual(2);
      expect([...new Set(garps.map((f) => f.srcMac))]).toEqual([vmac]);
      // both a and b sent from the VMAC MAC (the same one)
      expect(new Set(ads.map((f) => f.src))).toEqual(new Set(["192.0.2.1", "192.0.2.2"]));
      expectClean(A2);
      expectClean(B);
    } finally {
      await e.close();
    }
  }, 40_000);

  test.concurrent("the notify FIFO shows the ordered events to a reader, and to a vrrp_notify_fifo_script: BACKUP, MASTER, BACKUP (preempted), STOP", async () => {
    const e = new TestEnv(createLab({ purpose: "vcfifo", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    const d = dir("fifo");
    let reader: Proc | undefined;
    try {
      const fifo = join(d, "vrrp.fifo");
      const VIP = "192.0.2.100";
      // a second FIFO (vrrp_notify_fifo) is consumed by its vrrp_notify_fifo_script, which vipd starts
      const fifo2 = join(d, "vrrp2.fifo");
      const out = join(d, "script.out");
      // a consumer that takes 100 ms per line: the STOP line must still reach it at shutdown
      const consumer = shellScript(join(d, "consumer.sh"), `while read -r line; do sleep 0.1; echo "$line" >> ${out}; done < "$1"`);
      const A = e.vipd("a", globals("fa", [`notify_fifo ${fifo}`, `vrrp_notify_fifo ${fifo2}`, `vrrp_notify_fifo_script ${consumer}`]) + inst({ priority: 100, vip: `${VIP}/24` }));
      await waitFor(() => existsSync(fifo), WAIT_MS, "the FIFO to be created");
      reader = new Proc("fifo reader", ["cat", fifo]);
      await waitStatus(A, "MASTER", WAIT_MS);
      const B = e.vipd("b", globals("fb") + inst({ priority: 200, vip: `${VIP}/24` }));
      await waitStatus(B, "MASTER", WAIT_MS);
      await waitStatus(A, "BACKUP", WAIT_MS);
      expect(await A.stop()).toBe(0);
      const want = ['INSTANCE "VI_1" BACKUP 100', 'INSTANCE "VI_1" MASTER 100', 'INSTANCE "VI_1" BACKUP 100', 'INSTANCE "VI_1" STOP 100'];
      const got = await waitFor(() => {
        const lines = reader!.lines.map((l) => l.line);
        return lines.length >= want.length ? lines : undefined;
      }, 3000, () => `FIFO lines (so far: ${JSON.stringify(reader!.text)})`);
      expect(got).toEqual(want);
      const viaScript = await waitFor(() => {
        const l = existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean) : [];
        return l.length >= want.length ? l : undefined;
      }, 3000, () => `the fifo script's lines (so far: ${existsSync(out) ? readFileSync(out, "utf8") : "none"})`);
      expect(viaScript).toEqual(want);
      // the consumer does not outlive the daemon
      await waitFor(() => run(["pgrep", "-f", consumer], true).stdout.trim() === "", 3000, "the fifo script to end");
    } finally {
      await reader?.stop("SIGKILL", 1000);
      await e.close();
    }
  }, 40_000);

  test.concurrent("fifo_write_vrrp_states_on_reload: a reload writes every instance's and group's current state to the FIFO again", async () => {
    const e = new TestEnv(createLab({ purpose: "vcfifor", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    const d = dir("fifor");
    let reader: Proc | undefined;
    try {
      const fifo = join(d, "fifo");
      const config = globals("fr", [`notify_fifo ${fifo}`, "fifo_write_vrrp_states_on_reload"]) +
        "vrrp_sync_group G1 {\n    group {\n        VI_1\n    }\n}\n" +
        inst({ name: "VI_1", vrid: 51, priority: 100, vip: "192.0.2.100/24" }) +
        inst({ name: "VI_2", vrid: 52, priority: 90, vip: "192.0.2.101/24" });
      const A = e.vipd("a", config);
      await waitFor(() => existsSync(fifo), WAIT_MS, "the FIFO");
      reader = new Proc("fifo reader", ["cat", fifo]);
      for (const n of ["VI_1", "VI_2"]) await waitStatus(A, "MASTER", WAIT_MS, n);
      await waitFor(() => reader!.lines.some((l) => l.line === 'GROUP "G1" MASTER 0'), 3000, "the group's MASTER line");
      await Bun.sleep(200);
      const from = reader.lines.length;
      A.kill("SIGHUP");
      await A.waitLine(/Reloaded .* 2 kept/, 3000);
      const replay = await waitFor(() => (reader!.lines.length >= from + 3 ? reader!.lines.slice(from).map((l) => l.line) : undefined), 3000,
        () => `the replayed states (${reader!.text})`);
      expect(replay.sort()).toEqual(['GROUP "G1" MASTER 0', 'INSTANCE "VI_1" MASTER 100', 'INSTANCE "VI_2" MASTER 90']);
      expect(A.lines.filter((l) => /Entering/.test(l.line)).length).toBe(4); // the reload changed no state
    } finally {
      await reader?.stop("SIGKILL", 1000);
      await e.close();
    }
  }, 40_000);

  test.concurrent.skipIf(!HAVE_AIOSMTPD)("smtp_alert: the MASTER transition arrives as an email at a real SMTP server in the lab", async () => {
    const e = new TestEnv(createLab({ purpose: "vcmail", nodes: ["mail", "a"], v4: "192.0.2.0/24" }));
    const d = dir("mail");
    const maildir = join(d, "maildir");
    let server: Proc | undefined;
    try {
      const mailIp = e.lab.node("mail").v4!;
      server = new Proc("aiosmtpd", ["ip", "netns", "exec", e.ns("mail"), PYTHON, "-m", "aiosmtpd", "-n", "-l", `${mailIp}:25`, "-c", "aiosmtpd.handlers.Mailbox", maildir]);
      await waitFor(() => {
        if (!server!.running) throw new Error(`aiosmtpd exited: ${server!.text}`);
        return run(["ip", "netns", "exec", e.ns("mail"), "ss", "-Htln", "sport = :25"], true).stdout.includes(`${mailIp}:25`);
      }, 10_000, "aiosmtpd to listen");
      const A = e.vipd("a", globals("lb-a", [
        "notification_email {", "    ops@vipd.test", "}", "notification_email_from vipd@lb-a.vipd.test", `smtp_server ${mailIp} 25`, "smtp_connect_timeout 5",
      ]) + inst({ priority: 100, vip: "192.0.2.100/24", extra: ["smtp_alert"] }));
      await waitStatus(A, "MASTER", WAIT_MS);
      const mails = () => ["new", "cur"].flatMap((s) => {
        const p = join(maildir, s);
        return existsSync(p) ? readdirSync(p).map((f) => readFileSync(join(p, f), "utf8")) : [];
      });
      const subject = "[lb-a] VRRP Instance VI_1 - Entering MASTER state";
      const m = await waitFor(() => mails().find((x) => x.includes(`Subject: ${subject}`)), 8000, () => `the MASTER email (have ${mails().length}: ${mails().map((x) => /Subject: .*/.exec(x)?.[0]).join("; ")})`);
      expect(m).toContain("X-MailFrom: vipd@lb-a.vipd.test");
      expect(m).toContain("X-RcptTo: ops@vipd.test");
      expect(m).toContain("=> VRRP Instance is now owning VRRP VIPs <=");
      expectClean(A);
    } finally {
      await server?.stop("SIGTERM", 2000);
      await e.close();
    }
  }, 40_000);
});
