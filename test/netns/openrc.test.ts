/**
 * packaging/alpine/vipd.initd and vipd.confd under Debian's real openrc (0.45, unpacked by
 * scripts/setup, never installed on the host), in a scratch root: an overlay over the host's
 * `/` with a tmpfs upper layer, in a private mount namespace, a new pid namespace and a lab
 * network namespace (test/netns/openrc-root.sh). The scratch root boots like Alpine does
 * (`openrc sysinit`, `rc-update add`, `openrc default`); a stub `networking` service provides
 * `net`, which vipd needs. Then: vipd runs under supervise-daemon through its keepalived
 * command line and becomes MASTER; status, reload (a new VIP; a broken config refused),
 * data, stats, respawn after SIGKILL, stop; KEEPALIVED_OPTS and restart; and nothing is left
 * behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import type { Subprocess } from "bun";
import { hasAddress, instanceConfig, type StatusJson, VIPD_BIN, waitFor } from "./daemon.ts";
import { createLab, type Lab } from "./lab.ts";

const repo = new URL("../..", import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const OPENRC_TREE = `${process.env.VIPD_OPENRC_DIR ?? "/var/cache/vipd-test/openrc"}/root`;
const haveOpenrc = existsSync(`${OPENRC_TREE}/.unpacked`) && existsSync(`${OPENRC_TREE}/sbin/openrc-run`);
if (isRoot && !haveOpenrc) {
  console.warn(`test/netns/openrc.test.ts SKIPPED: Debian's openrc is not unpacked in ${OPENRC_TREE}; run scripts/setup (as root, without VIPD_SKIP_APT=1)`);
}

/** The scratch root's pid 1 gives up after this many seconds even if the test never kills it. */
const ROOT_LIFETIME_S = 150;
const VIP = "192.0.2.100";
const VIP2 = "192.0.2.101";
const DAEMON_ARGS = "keepalived --dont-fork --pid /run/vipd.pid --use-file /etc/keepalived/keepalived.conf";

const config = (vips: string[]) => instanceConfig({ priority: 200, vips: vips.map((v) => `${v}/24`), advertInt: 0.5 });

interface Ps {
  pid: number;
  ppid: number;
  args: string;
}

describe.skipIf(!isRoot || !haveOpenrc)("OpenRC: packaging/alpine/vipd.initd under Debian's openrc in a scratch root", () => {
  let lab: Lab;
  let ns = "";
  const dir = mkdtempSync(`${tmpdir()}/vipdt-openrc-`);
  const base = `${dir}/root`; // a tmpfs is mounted here, inside the private mount namespace
  let holder: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let pid1 = 0; // host pid of the scratch root's init
  let holderOut = "";
  /** cgroups openrc-run would create for our services if it saw the host's cgroup mounts. */
  const hostCgroups = () => {
    const dirs = existsSync("/sys/fs/cgroup") ? ["", ...readdirSync("/sys/fs/cgroup").map((d) => `/${d}`)] : [];
    return dirs.flatMap((d) => ["openrc", "vipd", "networking"].map((n) => `/sys/fs/cgroup${d}/${n}`)).filter((p) => existsSync(p));
  };
  const cgroupsBefore = hostCgroups();
  const hostPaths = ["/run/openrc", "/etc/init.d/vipd", "/etc/conf.d/vipd", "/etc/runlevels", "/lib/rc", "/sbin/openrc-run"];
  const hostPathsBefore = hostPaths.map((p) => [p, existsSync(p)]);
  const hostDumps = ["/tmp/keepalived.data", "/tmp/keepalived.stats"].map((f) => [f, existsSync(f) ? statSync(f).mtimeMs : -1] as const);

  /** Runs a command inside the scratch root (its mount, pid and network namespaces, its /), in a session of its own. */
  function inRoot(cmd: string[], stdin?: string): { code: number; out: string; err: string } {
    const r = Bun.spawnSync(
      ["setsid", "-w", "nsenter", "-t", String(pid1), "-m", "-p", "-n", "-r", "-w", "--", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "EINFO_COLOR=NO", ...cmd],
      { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe", timeout: 20_000 },
    );
    return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
  }
  const rc = (...args: string[]) => inRoot(["rc-service", "vipd", ...args]);
  const ps = (): Ps[] =>
    inRoot(["ps", "-e", "-o", "pid=,ppid=,args="])
      .out.split("\n")
      .filter((l) => l.trim())
      .map((l) => {
        const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)!;
        return { pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! };
      });
  const daemonPid = () => Number(inRoot(["cat", "/run/vipd.pid"]).out.trim()) || 0;
  const status = (): StatusJson | undefined => {
    const r = inRoot(["vipd", "status", "--json"]);
    return r.code === 0 ? (JSON.parse(r.out) as StatusJson) : undefined;
  };
  /** Host pids of every process below the holder (`unshare`), found through /proc. */
  const hostDescendants = (): number[] => {
    const parent = new Map<number, number>();
    for (const e of readdirSync("/proc")) {
      if (!/^\d+$/.test(e)) continue;
      try {
        // comm may hold spaces and parentheses: the ppid is the second field after the last ')'.
        const stat = readFileSync(`/proc/${e}/stat`, "utf8");
        parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      } catch {
        // exited meanwhile
      }
    }
    const out: number[] = [];
    const top = holder?.pid ?? -1;
    for (const pid of parent.keys()) {
      let p = parent.get(pid);
      for (let i = 0; i < 64 && p !== undefined && p > 1; i++) {
        if (p === top) {
          out.push(pid);
          break;
        }
        p = parent.get(p);
      }
    }
    return out;
  };

  async function teardown(): Promise<void> {
    if (holder) {
      // SIGKILL to a pid namespace's init kills every process in it; the mounts go with
      // the mount namespace.
      if (pid1) {
        try {
          process.kill(pid1, "SIGKILL");
        } catch {
          // already gone
        }
      }
      holder.kill("SIGKILL");
      await Promise.race([holder.exited, Bun.sleep(5000)]);
      holder = undefined;
    }
    lab?.destroy();
  }

  beforeAll(async () => {
    if (!existsSync(VIPD_BIN)) throw new Error(`${VIPD_BIN} missing: run scripts/build`);
    lab = createLab({ purpose: "openrc", nodes: ["a", "b"], v4: "192.0.2.0/24" });
    ns = lab.node("a").ns;
    mkdirSync(base);
    writeFileSync(`${dir}/keepalived.conf`, config([VIP]));
    holder = Bun.spawn(
      [
        "ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
        `${repo}test/netns/openrc-root.sh`, base, OPENRC_TREE, VIPD_BIN,
        `${repo}packaging/alpine/vipd.initd`, `${repo}packaging/alpine/vipd.confd`, `${dir}/keepalived.conf`, String(ROOT_LIFETIME_S),
      ],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    const reader = holder.stdout.getReader();
    const dec = new TextDecoder();
    void (async () => {
      for (let i = 0; i < 10_000; i++) {
        const { value, done } = await reader.read();
        if (done) break;
        holderOut += dec.decode(value);
      }
    })();
    await waitFor(() => holderOut.includes("openrc-root: ready") || holder!.exitCode !== null, 10_000, "the scratch root");
    if (!holderOut.includes("openrc-root: ready")) {
      throw new Error(`openrc-root.sh failed (${holder.exitCode}): ${await new Response(holder.stderr).text()}`);
    }
    // `unshare --fork` has one child: the pid namespace's init, chrooted by now.
    const children = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, "utf8").trim().split(/\s+/);
    expect(children.length).toBe(1);
    pid1 = Number(children[0]);
  }, 20_000);

  afterAll(async () => {
    await teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the scratch root has Debian's openrc at its own paths, vipd and the keepalived symlink", () => {
    expect(inRoot(["openrc", "--version"]).out).toMatch(/^openrc \(OpenRC[^)]*\) 0\.\d+/);
    expect(inRoot(["test", "-x", "/sbin/openrc-run"]).code).toBe(0);
    expect(inRoot(["readlink", "/usr/sbin/keepalived"]).out.trim()).toBe("vipd");
    expect(inRoot(["keepalived", "-v"]).err).toMatch(/^Keepalived v\d+\.\d+\.\d+ .*vipd/);
    // None of it reaches the host.
    expect(hostPaths.map((p) => [p, existsSync(p)])).toEqual(hostPathsBefore);
  });

  test("openrc sysinit, rc-update add, openrc default: networking provides net, then vipd starts", () => {
    const sysinit = inRoot(["openrc", "sysinit"]);
    expect(sysinit.code).toBe(0);
    expect(inRoot(["cat", "/run/openrc/softlevel"]).out.trim()).toBe("sysinit");
    for (const svc of ["networking", "vipd"]) expect(inRoot(["rc-update", "add", svc, "default"]).code).toBe(0);
    // depend() { need net } resolves to the service that provides net.
    expect(inRoot(["/etc/init.d/vipd", "ineed"]).out.trim()).toBe("networking");
    const boot = inRoot(["openrc", "default"]);
    expect(boot.err).not.toMatch(/ERROR|cgroup/);
    expect(boot.code).toBe(0);
    const lines = boot.out.split("\n");
    const net = lines.findIndex((l) => l.includes("Bringing up network interfaces (stub)"));
    const check = lines.findIndex((l) => /Checking \/etc\/keepalived\/keepalived\.conf \.\.\. \[ ok \]/.test(l));
    const start = lines.findIndex((l) => /Starting vipd \.\.\. \[ ok \]/.test(l));
    expect(net).toBeGreaterThanOrEqual(0);
    expect(check).toBeGreaterThan(net); // need net: networking first
    expect(start).toBeGreaterThan(check); // start_pre checks the config
    expect(inRoot(["rc-service", "networking", "status"]).out).toContain("status: started");
  });

  test("vipd runs under supervise-daemon through the keepalived command line, becomes MASTER, status says started", async () => {
    await waitFor(() => hasAddress(ns, VIP), 10_000, `${VIP} in ${ns}`);
    const procs = ps();
    const sup = procs.filter((p) => p.args.startsWith("supervise-daemon vipd --start"));
    expect(sup.length).toBe(1);
    const daemons = procs.filter((p) => p.args.startsWith("/usr/sbin/vipd "));
    expect(daemons.map((p) => ({ ppid: p.ppid, args: p.args }))).toEqual([{ ppid: sup[0]!.pid, args: `/usr/sbin/vipd ${DAEMON_ARGS}` }]);
    expect(daemonPid()).toBe(daemons[0]!.pid);
    const s = await waitFor(() => status(), 5000, "vipd status");
    expect(s.instances.map((i) => [i.name, i.state, i.vipsSet])).toEqual([["VI_1", "MASTER", true]]);
    expect(s.pid).toBe(daemons[0]!.pid);
    const st = rc("status");
    expect(st.out).toContain("status: started");
    expect(st.code).toBe(0);
    expect(hasAddress(ns, VIP2)).toBe(false);
  }, 20_000);

  test("reload: a broken config is refused and the daemon keeps running; a good one adds the new VIP in place", async () => {
    const pid = daemonPid();
    expect(inRoot(["sh", "-c", "cat > /etc/keepalived/keepalived.conf"], "vrrp_instance VI_1 {\n  interface eth0\n}\n").code).toBe(0);
    const bad = rc("reload");
    expect(bad.code).not.toBe(0);
    expect(bad.err + bad.out).toMatch(/missing virtual_router_id/);
    expect(daemonPid()).toBe(pid);
    expect(hasAddress(ns, VIP)).toBe(true);

    expect(inRoot(["sh", "-c", "cat > /etc/keepalived/keepalived.conf"], config([VIP, VIP2])).code).toBe(0);
    const good = rc("reload");
    expect(good.out).toMatch(/Reloading vipd \.\.\. \[ ok \]/);
    expect(good.code).toBe(0);
    await waitFor(() => hasAddress(ns, VIP2), 5000, `${VIP2} after reload`);
    expect(hasAddress(ns, VIP)).toBe(true);
    expect(daemonPid()).toBe(pid); // reloaded, not restarted
    const s = status()!;
    expect(s.instances[0]!.vips).toEqual([`${VIP}/24 dev eth0`, `${VIP2}/24 dev eth0`]);
    expect(s.instances[0]!.state).toBe("MASTER");
  }, 20_000);

  test("data and stats write /tmp/keepalived.data and /tmp/keepalived.stats in the scratch root", async () => {
    expect(inRoot(["rm", "-f", "/tmp/keepalived.data", "/tmp/keepalived.stats"]).code).toBe(0);
    expect(rc("data").code).toBe(0);
    expect(rc("stats").code).toBe(0);
    await waitFor(() => inRoot(["test", "-s", "/tmp/keepalived.data"]).code === 0 && inRoot(["test", "-s", "/tmp/keepalived.stats"]).code === 0, 5000, "both dumps");
    const data = inRoot(["cat", "/tmp/keepalived.data"]).out;
    expect(data).toContain(" VRRP Instance = VI_1\n");
    expect(data).toContain("   State = MASTER\n");
    expect(data).toContain(`${VIP2}/24 dev eth0`);
    expect(inRoot(["cat", "/tmp/keepalived.stats"]).out).toMatch(/VRRP Instance: VI_1\n[\s\S]*Became master: 1\n/);
    // The host's /tmp is untouched.
    for (const [f, mtime] of hostDumps) expect(existsSync(f) ? statSync(f).mtimeMs : -1).toBe(mtime);
  }, 15_000);

  test("SIGKILL to vipd: supervise-daemon respawns it (new pid, same supervisor), it becomes MASTER again", async () => {
    const old = daemonPid();
    const sup = ps().find((p) => p.args.startsWith("supervise-daemon vipd --start"))!;
    // Never `kill 0` or `kill 1`: 0 is the caller's process group, which nsenter shares with this test.
    if (!(old > 1 && sup)) throw new Error(`no running vipd to kill (pid file says ${old})`);
    expect(inRoot(["kill", "-KILL", String(old)]).code).toBe(0);
    const fresh = await waitFor(
      () => {
        const d = ps().find((p) => p.args === `/usr/sbin/vipd ${DAEMON_ARGS}`);
        return d && d.pid !== old && daemonPid() === d.pid ? d : undefined;
      },
      10_000,
      "a respawned vipd",
      100,
    );
    expect(fresh.ppid).toBe(sup.pid);
    expect(ps().some((p) => p.pid === old)).toBe(false);
    const s = await waitFor(() => {
      const j = status();
      return j?.pid === fresh.pid && j.instances[0]?.state === "MASTER" ? j : undefined;
    }, 10_000, "the respawned vipd MASTER", 100);
    expect(s.instances[0]!.vipsSet).toBe(true);
    expect(hasAddress(ns, VIP) && hasAddress(ns, VIP2)).toBe(true);
    const st = rc("status");
    expect(st.out).toContain("status: started");
    expect(st.code).toBe(0);
  }, 25_000);

  test("stop: vipd and its supervisor exit, the VIPs are gone, status says stopped", () => {
    const stop = rc("stop");
    expect(stop.out).toMatch(/Stopping vipd \.\.\. \[ ok \]/);
    expect(stop.code).toBe(0);
    expect(hasAddress(ns, VIP)).toBe(false);
    expect(hasAddress(ns, VIP2)).toBe(false);
    expect(ps().filter((p) => /supervise-daemon|\/usr\/sbin\/vipd/.test(p.args))).toEqual([]);
    const st = rc("status");
    expect(st.out).toContain("status: stopped");
    expect(st.code).toBe(3);
  }, 15_000);

  test("KEEPALIVED_OPTS and error_log from /etc/conf.d/vipd reach the daemon; restart brings it back MASTER", async () => {
    const conf = 'KEEPALIVED_OPTS="-D -l"\nerror_log=/var/log/vipd.log\n';
    expect(inRoot(["sh", "-c", "cat >> /etc/conf.d/vipd"], conf).code).toBe(0);
    const start = rc("start");
    expect(start.out).toMatch(/Starting vipd \.\.\. \[ ok \]/);
    expect(start.code).toBe(0);
    const first = await waitFor(() => ps().find((p) => p.args.startsWith("/usr/sbin/vipd ")), 5000, "vipd");
    expect(first.args).toBe(`/usr/sbin/vipd ${DAEMON_ARGS} -D -l`);
    // -l: the log goes to stderr, which supervise-daemon writes to error_log.
    await waitFor(() => /\(VI_1\) Entering MASTER STATE/.test(inRoot(["cat", "/var/log/vipd.log"]).out), 10_000, "MASTER in /var/log/vipd.log", 100);
    const restart = rc("restart");
    expect(restart.out).toMatch(/Stopping vipd \.\.\. \[ ok \][\s\S]*Starting vipd \.\.\. \[ ok \]/);
    expect(restart.code).toBe(0);
    const second = await waitFor(() => ps().find((p) => p.args.startsWith("/usr/sbin/vipd ") && p.pid !== first.pid), 5000, "the restarted vipd");
    expect(second.args).toBe(first.args);
    await waitFor(() => status()?.instances[0]?.state === "MASTER", 10_000, "MASTER after restart", 100);
    expect(hasAddress(ns, VIP)).toBe(true);
    expect(rc("stop").code).toBe(0);
    expect(hasAddress(ns, VIP)).toBe(false);
    expect(ps().filter((p) => /supervise-daemon|\/usr\/sbin\/vipd/.test(p.args))).toEqual([]);
  }, 30_000);

  test("teardown leaves no process and no mount behind", async () => {
    const pids = hostDescendants();
    expect(pids).toContain(pid1);
    await teardown();
    // The kernel kills the namespace's processes asynchronously: allow it a moment.
    const left = () => pids.filter((p) => existsSync(`/proc/${p}`));
    await waitFor(() => left().length === 0, 5000, () => `processes ${left().join(" ")} to exit`, 50).catch(() => undefined);
    expect(left()).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
    expect(readdirSync(base)).toEqual([]); // the tmpfs and overlay were only ever in the private namespace
    expect(hostCgroups()).toEqual(cgroupsBefore);
    expect(hostPaths.map((p) => [p, existsSync(p)])).toEqual(hostPathsBefore);
  }, 15_000);
});
