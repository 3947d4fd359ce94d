import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sigrtmax, sigrtmin } from "../../ffi/rt-signal.ts";
import { parseKeepalivedArgs, planKeepalived } from "../../src/cli/keepalived-compat.ts";
import { formatTimestamp, renderStatsDump } from "../../src/daemon/keepalived-dumps.ts";
import { signalNumbers, writeDumpFile } from "../../src/daemon/signals.ts";
import type { DaemonStatus } from "../../src/daemon/status-types.ts";
import { newStats } from "../../src/vrrp/types.ts";

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "vipd-ops-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nums = signalNumbers(34, 64);
const signum = (n: string) => (Object.hasOwn(nums, n) ? nums[n as keyof typeof nums] : undefined);

describe("keepalived command line", () => {
  test("getopt_long: bundles, attached and separate arguments, --opt=value, prefixes", () => {
    const p = parseKeepalivedArgs(["-nlD", "-fFILE", "-S", "local1", "--pid=/run/k.pid", "--config-id", "x", "--dont-f"]);
    expect(p).toEqual({
      options: [
        { name: "dont-fork", text: "-n" },
        { name: "log-console", text: "-l" },
        { name: "log-detail", text: "-D" },
        { name: "use-file", value: "FILE", text: "-f" },
        { name: "log-facility", value: "local1", text: "-S" },
        { name: "pid", value: "/run/k.pid", text: "--pid=/run/k.pid" },
        { name: "config-id", value: "x", text: "--config-id" },
        { name: "dont-fork", value: undefined, text: "--dont-f" },
      ],
      positionals: [],
    });
    expect(parseKeepalivedArgs(["--bogus"])).toBe("Unknown option --bogus");
    expect(parseKeepalivedArgs(["-f"])).toBe("option requires an argument -- 'f'");
    expect(parseKeepalivedArgs(["-q"])).toBe("invalid option -- 'q'");
    // -t and -g take optional arguments only when attached
    expect(parseKeepalivedArgs(["-t", "x"])).toEqual({ options: [{ name: "config-test", value: undefined, text: "-t" }], positionals: ["x"] });
  });

  test("-n -l -D -f FILE maps onto vipd run in the foreground with keepalived's pid file", () => {
    expect(planKeepalived(["-n", "-l", "-D", "-f", "/etc/k.conf"], signum)).toEqual({
      kind: "run",
      argv: ["-f", "/etc/k.conf", "--log-console", "--log-detail", "--pid-file", "/run/keepalived.pid"],
      fork: false,
      pidFile: "/run/keepalived.pid",
      umask: undefined,
      notice: undefined,
    });
  });

  test("without -n it detaches; -S, -G, -p, -i, -u carried over; meaningless options noted once", () => {
    const p = planKeepalived(["-D", "-S", "0", "-G", "-p", "/run/x.pid", "-i", "node1", "-u", "0177", "-P", "-x", "-r", "/run/v.pid", "--all"], signum);
    expect(p).toEqual({
      kind: "run",
      argv: ["--config-id", "node1", "--log-detail", "--no-syslog", "--log-facility", "0", "--pid-file", "/run/x.pid"],
      fork: true,
      pidFile: "/run/x.pid",
      umask: 0o177,
      notice: "keepalived option(s) -P -x -r --all mean nothing to vipd and are ignored",
    });
  });

  test("-t is vipd check; -v, -h and --signum answer at once with keepalived's streams and codes", () => {
    expect(planKeepalived(["-t", "-f", "/a.conf"], signum)).toEqual({ kind: "check", argv: ["-f", "/a.conf"], logFile: undefined, notice: undefined });
    const t = planKeepalived(["--config-test=/tmp/log", "-f", "/a.conf"], signum);
    expect(t.kind === "check" && t.logFile).toBe("/tmp/log");
    expect(planKeepalived(["--signum=JSON"], signum)).toEqual({ kind: "exit", code: 0, stdout: "36\n" });
    expect(planKeepalived(["--signum=STATS_CLEAR"], signum)).toEqual({ kind: "exit", code: 0, stdout: "63\n" });
    expect(planKeepalived(["--signum=TDUMP"], signum)).toEqual({ kind: "exit", code: 1, stderr: "Unknown sigfunc TDUMP\n" });
    const v = planKeepalived(["-v"], signum);
    expect(v.kind === "exit" && v.code === 0 && v.stderr).toMatch(/^Keepalived v2\.2\.7 \(compatible\), provided by vipd /);
    const h = planKeepalived(["--help"], signum);
    expect(h.kind === "exit" && h.stderr).toContain("Usage: keepalived [OPTION...]");
    expect(planKeepalived(["-u", "999"], signum)).toEqual({ kind: "exit", code: 1, stderr: "Invalid umask '999'\n" });
  });

  test("signal numbers follow libc's SIGRTMIN (musl reserves one more than glibc)", () => {
    expect(signalNumbers(34, 64)).toEqual({ STOP: 15, RELOAD: 1, DATA: 10, STATS: 12, STATS_CLEAR: 63, JSON: 36 });
    expect(signalNumbers(35, 64).JSON).toBe(37);
  });
});

describe("dumps", () => {
  const status: DaemonStatus = {
    version: "vipd test",
    pid: 1,
    configFile: "/k.conf",
    startedAt: 0,
    routerId: "r1",
    instances: ["VI_1", "VI_2"].map((name, i) => ({
      name, interface: "eth0", family: "inet", vrid: 51 + i, version: 2, state: "BACKUP", wantState: "BACKUP",
      basePriority: 100, effectivePriority: 100, advertInt: 1, masterAdvertInt: 1, masterAddress: undefined, masterPriority: 0,
      sourceAddress: "192.0.2.1", vips: [], evips: [], vipsSet: false, authType: "NONE", nopreempt: false, preemptDelay: 0,
      accept: true, faults: [], lastTransition: 0, stats: { ...newStats(), advert_rcvd: 7 + i, ip_ttl_err: 3 }, extra: {},
    })),
  };

  test("stats dump: keepalived 2.2.7's layout per instance, counters in place", () => {
    const out = renderStatsDump(status);
    const reference = readFileSync(join(root, "test/fixtures/keepalived-dumps/keepalived.stats"), "utf8");
    const blocks = out.split(/(?=^VRRP Instance: )/m);
    expect(blocks.length).toBe(2);
    for (const b of blocks) expect(b.replace(/\d+/g, "N").replace(/VI_N/, "VI_N")).toBe(reference.replace(/\d+/g, "N"));
    expect(blocks[1]).toContain("    Received: 8\n");
    expect(blocks[0]).toContain("    TTL: 3\n");
  });

  test("timestamps as keepalived prints them", () => {
    expect(formatTimestamp(1795319129.096037)).toMatch(/^1795319129\.096037 \(\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.096037 2026\)$/);
  });

  test("dump files are replaced, mode 0600, and a planted symlink is not followed", () => {
    const target = join(dir, "victim");
    writeFileSync(target, "precious");
    const dump = join(dir, "keepalived.json");
    require("node:fs").symlinkSync(target, dump);
    writeDumpFile(dump, "[]\n");
    expect(readFileSync(target, "utf8")).toBe("precious");
    expect(readFileSync(dump, "utf8")).toBe("[]\n");
    expect(require("node:fs").lstatSync(dump).isSymbolicLink()).toBe(false);
    expect(require("node:fs").statSync(dump).mode & 0o777).toBe(0o600);
  });
});

function run(cmd: string[], env?: Record<string, string>): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: env ? { ...process.env, ...env } : undefined });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}
const have = (bin: string) => run(["sh", "-c", `command -v ${bin}`]).code === 0;

describe("packaging", () => {
  const shellScripts = run(["git", "-C", root, "ls-files"]).out.split("\n").filter((f) => {
    if (!f) return false;
    try {
      return /^#!.*\b(sh|bash|openrc-run)\b/.test(readFileSync(join(root, f), "utf8").split("\n", 1)[0]!);
    } catch {
      return false;
    }
  });

  test.skipIf(!have("shellcheck"))("shellcheck: packaging scripts clean at every severity; no errors in any shell script", () => {
    expect(shellScripts).toContain("packaging/openwrt/vipd.init");
    expect(shellScripts).toContain("packaging/alpine/vipd.initd");
    const mine = run(["shellcheck", "-f", "gcc", join(root, "packaging/openwrt/vipd.init"), join(root, "packaging/alpine/vipd.initd")]);
    expect(mine.out).toBe("");
    expect(mine.code).toBe(0);
    const all = run(["shellcheck", "-S", "error", "-f", "gcc", ...shellScripts.map((f) => join(root, f))]);
    expect(all.out).toBe("");
  });

  test.skipIf(!have("systemd-analyze"))("systemd-analyze verify accepts the unit (binary path pointed at dist/vipd)", () => {
    const unit = readFileSync(join(root, "packaging/systemd/vipd.service"), "utf8");
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    const path = join(dir, "vipd.service");
    writeFileSync(path, unit.replaceAll("/usr/sbin/vipd", process.execPath));
    const r = run(["systemd-analyze", "verify", path]);
    expect(r.err + r.out).toBe("");
    expect(r.code).toBe(0);
    // The shipped file differs only in the binary's path: verify names nothing else.
    const shipped = run(["systemd-analyze", "verify", join(root, "packaging/systemd/vipd.service")]);
    const complaints = (shipped.err + shipped.out).split("\n").filter((l) => l && !l.includes("/usr/sbin/vipd is not executable"));
    expect(complaints).toEqual([]);
  });

  test("procd script: parses, and start_service builds the instance from UCI (stubbed procd.sh)", () => {
    const init = join(root, "packaging/openwrt/vipd.init");
    expect(run(["sh", "-n", init]).code).toBe(0);
    const conf = join(dir, "k.conf");
    writeFileSync(conf, "");
    const stub = `
      procd_open_instance() { echo "open"; }
      procd_close_instance() { echo "close"; }
      procd_set_param() { echo "set $*"; }
      procd_append_param() { echo "append $*"; }
      procd_send_signal() { echo "signal $*"; }
      procd_add_reload_trigger() { echo "trigger $*"; }
      config_load() { :; }
      config_get() { eval "v=\\\${UCI_$3:-$4}"; eval "$1=\\$v"; }
      config_get_bool() { config_get "$@"; }
      config_list_foreach() { for a in $UCI_extra_arg; do "$3" "$a"; done; }
      . "$1"
      start_service; reload_service; PROG="$2"; json
    `;
    const uci = join(dir, "uci-vipd");
    writeFileSync(uci, "");
    const vipd = join(root, "dist/vipd");
    const r = run(["sh", "-c", stub, "sh", init, vipd], { VIPD_UCI: uci, UCI_config_file: conf, UCI_log_console: "1", UCI_extra_arg: "-D -S 1" });
    expect(r.err).toBe("");
    const lines = r.out.trim().split("\n");
    expect(lines[0]).toBe("open");
    // keepalived's command line, as OpenWrt's keepalived package runs it (-n -f)
    expect(lines).toContain(`set command /usr/sbin/vipd keepalived --dont-fork --pid /var/run/vipd.pid --use-file ${conf}`);
    expect(lines).toContain("append command --log-console --no-syslog");
    expect(lines).toContain("append command -D");
    expect(lines).toContain("append command -S");
    expect(lines).toContain("append command 1");
    expect(lines).toContain("set respawn 3600 5 5");
    expect(lines).toContain("set stdout 1");
    expect(lines).toContain("set stderr 1");
    expect(lines).toContain("set reload_signal HUP");
    expect(lines).toContain("close");
    expect(lines).toContain("signal vipd * HUP");
    // json: the number comes from `vipd keepalived --signum=JSON` (SIGRTMIN+2)
    if (require("node:fs").existsSync(vipd)) expect(lines.at(-1)).toBe(`signal vipd * ${signalNumbers(sigrtmin(), sigrtmax()).JSON}`);
    const disabled = run(["sh", "-c", stub, "sh", init, vipd], { VIPD_UCI: uci, UCI_enabled: "0", UCI_config_file: conf });
    expect(disabled.out).not.toContain("open");
  });

  test("OpenRC script parses as sh and declares what the issue asks", () => {
    const initd = join(root, "packaging/alpine/vipd.initd");
    expect(run(["sh", "-n", initd]).code).toBe(0);
    const text = readFileSync(initd, "utf8");
    expect(text).toMatch(/^supervisor="supervise-daemon"$/m);
    expect(text).toMatch(/^extra_started_commands="reload data stats"$/m);
    expect(text).toMatch(/depend\(\) \{\n\tuse logger\n\tneed net\n/);
  });
});
