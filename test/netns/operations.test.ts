/**
 * Operations against the compiled vipd in namespaces: keepalived's dump signals (USR1, USR2,
 * SIGRTMIN+2) write keepalived's files; `--signum` equals Debian keepalived's; the `keepalived`
 * symlink's -t exit codes; and Debian's keepalived.service ExecStart line, run against the
 * symlink, starts vipd, elects, and talks sd_notify to a socket standing in for systemd; the
 * OpenWrt procd script's instance command (procd stood in for) starts vipd through the keepalived CLI.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { DgramReceiver } from "../unit/dgram-receiver.ts";
import { hasAddress, instanceConfig, Proc, TestEnv, VIPD_BIN, waitFor } from "./daemon.ts";
import { createLab } from "./lab.ts";

const isRoot = process.getuid?.() === 0;
const haveKeepalived = Bun.spawnSync(["sh", "-c", "command -v keepalived"]).exitCode === 0;

function sh(cmd: string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** Replaces every number in a dump so two dumps can be compared by layout. */
const skeleton = (s: string) => s.replace(/\d+/g, "N");

describe.skipIf(!isRoot || !haveKeepalived)("operations (compiled vipd in namespaces)", () => {
  let env: TestEnv;
  const dir = mkdtempSync(`${tmpdir()}/vipdt-ops-`);
  const link = `${dir}/keepalived`;

  beforeAll(() => {
    if (!existsSync(VIPD_BIN)) throw new Error(`${VIPD_BIN} missing: run scripts/build`);
    symlinkSync(VIPD_BIN, link);
    env = new TestEnv(createLab({ purpose: "ops", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
  });
  afterAll(async () => {
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("--signum prints what Debian's keepalived prints, for every sigfunc", () => {
    for (const name of ["STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON", "TDUMP", "NOPE"]) {
      const ka = sh(["keepalived", `--signum=${name}`]);
      const vi = sh([link, `--signum=${name}`]);
      expect({ name, code: vi.code, out: vi.out }).toEqual({ name, code: ka.code, out: ka.out });
      expect(sh([VIPD_BIN, "keepalived", `--signum=${name}`]).out).toBe(ka.out);
    }
  });

  test("keepalived -t through the symlink: keepalived's exit codes", () => {
    const good = `${dir}/good.conf`;
    writeFileSync(good, instanceConfig({ priority: 100, vips: ["192.0.2.50/24"] }));
    const fatal = `${dir}/fatal.conf`;
    writeFileSync(fatal, "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  priority 100\n  virtual_ipaddress {\n    192.0.2.50/24\n  }\n}\n");
    expect(sh(["ip", "netns", "exec", env.ns("a"), link, "-t", "-f", good]).code).toBe(0);
    expect(sh([link, "-t", "-f", `${dir}/missing.conf`]).code).toBe(6);
    expect(sh([link, "--config-test", "--use-file", fatal]).code).toBe(3); // no virtual_router_id
    const r = sh([link, "-t", "-f", `${dir}/missing.conf`, "-P", "-x", "--all"]);
    expect(r.err.match(/mean nothing to vipd/g)?.length).toBe(1);
    expect(sh([link, "-v"]).err).toMatch(/^Keepalived v\d+\.\d+\.\d+ .*vipd/);
  });

  test("USR1, USR2 and SIGRTMIN+2 write keepalived's data, stats and JSON dumps", async () => {
    const dumps = `${dir}/dumps`;
    mkdirSync(dumps);
    const conf = instanceConfig({ priority: 200, vips: ["192.0.2.100/24"], advertInt: 1 }).replace(
      "global_defs {",
      `global_defs {\n    state_dump_file ${dumps}/k.data\n    stats_dump_file ${dumps}/k.stats\n    json_dump_file ${dumps}/k.json`,
    );
    const v = env.vipd("a", conf);
    await v.waitLine(/\(VI_1\) Entering MASTER STATE/, 8000);
    const pid = Number(await waitFor(() => existsSync(v.pidFile) && readFileSync(v.pidFile, "utf8").trim(), 3000, "pid file"));
    const jsonSig = Number(sh(["keepalived", "--signum=JSON"]).out);
    v.kill("SIGUSR1");
    v.kill("SIGUSR2");
    process.kill(pid, jsonSig);
    await waitFor(() => ["k.data", "k.stats", "k.json"].every((f) => existsSync(`${dumps}/${f}`)), 3000, "three dump files");
    expect(v.running).toBe(true); // an RT signal's default action would have killed it

    const stats = readFileSync(`${dumps}/k.stats`, "utf8");
    const reference = readFileSync(new URL("../fixtures/keepalived-dumps/keepalived.stats", import.meta.url), "utf8");
    expect(skeleton(stats)).toBe(skeleton(reference)); // keepalived 2.2.7's layout, line for line
    expect(stats).toMatch(/Became master: 1\n/);

    const data = readFileSync(`${dumps}/k.data`, "utf8");
    expect(data).toMatch(/^------< Global definitions >------\n/);
    expect(data).toContain(" Router ID = r200\n");
    expect(data).toContain("------< VRRP Topology >------\n VRRP Instance = VI_1\n");
    expect(data).toContain("   State = MASTER\n");
    expect(data).toMatch(/ {5}192\.0\.2\.100\/24 dev eth0 scope global set\n/);

    const dumped = JSON.parse(readFileSync(`${dumps}/k.json`, "utf8"));
    const live = JSON.parse(sh([VIPD_BIN, "status", "--control", v.controlPath, "--keepalived-json"]).out);
    // Counters move between the two reads; everything else must be identical.
    const strip = (j: Array<{ data: Record<string, unknown>; stats: Record<string, unknown> }>) => j.map((e) => ({ data: e.data, stats: Object.keys(e.stats).sort() }));
    expect(strip(dumped)).toEqual(strip(live));
    expect(dumped[0].data.state).toBe(2);
    expect(dumped[0].data.iname).toBe("VI_1");
    for (const f of ["k.data", "k.stats", "k.json"]) expect(sh(["stat", "-c", "%a", `${dumps}/${f}`]).out.trim()).toBe("600");
    await v.stop("SIGTERM", 5000);
    expect(v.exitCode).toBe(0);
  }, 20_000);

  // OpenWrt's procd is not packaged for Debian (and code fetched from its repository may not be
  // committed here), so procd itself is stood in for: the script's start_service runs with
  // procd.sh's instance functions recording the command, which is then run as procd would
  // (stdout/stderr captured, /var/run private), and reload_service's signal is delivered to it.
  test("OpenWrt procd script: the instance start_service builds from UCI starts vipd through the keepalived CLI; reload_service reloads it", async () => {
    const init = new URL("../../packaging/openwrt/vipd.init", import.meta.url).pathname;
    const conf = `${dir}/procd.conf`, run = `${dir}/procd-run`, uci = `${dir}/uci-vipd`;
    mkdirSync(run);
    writeFileSync(uci, "");
    writeFileSync(conf, instanceConfig({ priority: 200, vips: ["192.0.2.88/24"], advertInt: 0.5 }));
    const stub = `
      procd_open_instance() { :; }
      procd_close_instance() { :; }
      procd_set_param() { if [ "$1" = command ]; then shift; printf '%s\\n' "$@"; fi; }
      procd_append_param() { if [ "$1" = command ]; then shift; printf '%s\\n' "$@"; fi; }
      config_load() { :; }
      config_get() { eval "v=\\\${UCI_$3:-$4}"; eval "$1=\\$v"; }
      config_get_bool() { config_get "$@"; }
      config_list_foreach() { for a in $UCI_extra_arg; do "$3" "$a"; done; }
      . "$1"
      start_service
    `;
    const built = Bun.spawnSync(["sh", "-c", stub, "sh", init], {
      stdout: "pipe", stderr: "pipe", env: { ...process.env, VIPD_UCI: uci, UCI_config_file: conf, UCI_log_console: "1", UCI_extra_arg: "-D" },
    });
    expect(built.stderr.toString()).toBe("");
    const argv = built.stdout.toString().trim().split("\n");
    expect(argv.slice(0, 3)).toEqual(["/usr/sbin/vipd", "keepalived", "--dont-fork"]);
    expect(argv).toContain("-D");
    argv[0] = VIPD_BIN; // where this suite's binary is
    // /var/run (the script's --pid file) and /run are private to the daemon's mount namespace
    const script = `mount --bind ${run} /var/run && mount --bind ${run} /run && exec "$@"`;
    const daemon = new Proc("procd-instance@a", ["ip", "netns", "exec", env.ns("a"), "sh", "-c", script, "sh", ...argv]);
    try {
      await daemon.waitLine(/\(VI_1\) Entering MASTER STATE/, 10_000);
      await waitFor(() => hasAddress(env.ns("a"), "192.0.2.88"), 3000, "VIP on a");
      const pid = Number(readFileSync(`${run}/vipd.pid`, "utf8").trim());
      expect(pid).toBe(daemon.pid);
      // reload_service: procd_send_signal vipd '*' HUP, delivered to the instance
      const reload = Bun.spawnSync(["sh", "-c", `procd_send_signal() { kill -"$3" ${pid}; }; . "$1"; reload_service`, "sh", init], { stderr: "pipe" });
      expect(reload.exitCode).toBe(0);
      await daemon.waitLine(/Reloaded/, 10_000);
      expect(daemon.exitCode).toBeNull();
      process.kill(pid, "SIGTERM");
      expect(await Promise.race([daemon.exited, Bun.sleep(8000).then(() => -1)])).toBe(0);
      expect(hasAddress(env.ns("a"), "192.0.2.88")).toBe(false);
    } finally {
      daemon.kill("SIGKILL");
    }
  }, 30_000);

  test("Debian's keepalived.service ExecStart, run against the symlink: starts, elects, notifies systemd", async () => {
    const unit = readFileSync("/lib/systemd/system/keepalived.service", "utf8");
    const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!;
    const defaults = existsSync("/etc/default/keepalived") ? readFileSync("/etc/default/keepalived", "utf8") : "";
    const daemonArgs = /^DAEMON_ARGS="?([^"\n]*)"?$/m.exec(defaults)?.[1] ?? "";
    const words = execStart.replace(/\$\{?DAEMON_ARGS\}?/, daemonArgs).trim().split(/\s+/);
    expect(words[0]).toBe("/usr/sbin/keepalived");
    words[0] = link;

    // /etc/keepalived and /run are bind-mounted inside the private mount namespace
    // `ip netns exec` creates, so the unit's default paths stay off the host.
    const etc = `${dir}/etc`, run = `${dir}/run`, notify = `${dir}/notify.sock`;
    mkdirSync(etc);
    mkdirSync(run);
    writeFileSync(`${etc}/keepalived.conf`, instanceConfig({ priority: 200, vips: ["192.0.2.77/24"], advertInt: 0.5 }));
    const rx = new DgramReceiver(notify);
    try {
      const backup = env.vipd("b", instanceConfig({ priority: 100, state: "BACKUP", vips: ["192.0.2.77/24"], advertInt: 0.5 }));
      const script = `mount --bind ${etc} /etc/keepalived && mount --bind ${run} /run && exec "$@"`;
      const daemon = new Proc("unit@a", ["ip", "netns", "exec", env.ns("a"), "sh", "-c", script, "sh", ...words], { NOTIFY_SOCKET: notify });
      try {
        await daemon.waitLine(/\(VI_1\) Entering MASTER STATE/, 10_000);
        await waitFor(() => hasAddress(env.ns("a"), "192.0.2.77"), 3000, "VIP on a");
        await backup.waitLine(/\(VI_1\) Entering BACKUP STATE/, 5000);
        expect(hasAddress(env.ns("b"), "192.0.2.77")).toBe(false);
        const msgs: string[] = [];
        await waitFor(() => (msgs.push(...rx.drain()), msgs.some((m) => m.startsWith("READY=1"))), 3000, "READY=1");
        const pid = Number(readFileSync(`${run}/keepalived.pid`, "utf8").trim());
        expect(msgs.find((m) => m.startsWith("READY=1"))).toContain(`MAINPID=${pid}`);
        process.kill(pid, "SIGHUP"); // ExecReload=/bin/kill -HUP $MAINPID
        await waitFor(() => (msgs.push(...rx.drain()), msgs.filter((m) => m.startsWith("READY=1")).length >= 2), 5000, "READY=1 after reload");
        expect(msgs.some((m) => /^RELOADING=1\nMONOTONIC_USEC=\d+\n/.test(m))).toBe(true);
        process.kill(pid, "SIGTERM");
        expect(await Promise.race([daemon.exited, Bun.sleep(8000).then(() => -1)])).toBe(0);
        msgs.push(...rx.drain());
        expect(msgs.some((m) => m.startsWith("STOPPING=1"))).toBe(true);
        await backup.waitLine(/\(VI_1\) Entering MASTER STATE/, 5000); // the peer takes over
      } finally {
        daemon.kill("SIGKILL");
      }
    } finally {
      rx.close();
    }
  }, 40_000);
});
