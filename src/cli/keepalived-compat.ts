/**
 * keepalived's command line on top of vipd, so existing init scripts and units work unchanged:
 * used when vipd is invoked as `keepalived` (a symlink) or as `vipd keepalived …`. Options are
 * read the way keepalived's getopt_long reads them, then mapped onto `vipd run` (daemon),
 * `vipd check` (-t) or answered here (-v, -h, --signum). Options that mean nothing to vipd are
 * accepted with one notice.
 */
import { existsSync, readFileSync } from "node:fs";
import { versionLine } from "../version.ts";

/** The keepalived release whose command line and dump formats vipd follows. */
export const KEEPALIVED_COMPAT_VERSION = "2.2.7";

type ArgKind = "none" | "required" | "optional";
interface OptSpec {
  short?: string;
  long: string;
  arg: ArgKind;
}

/** keepalived 2.2.7's options (keepalived/core/main.c). */
const OPTIONS: OptSpec[] = [
  { short: "f", long: "use-file", arg: "required" },
  { short: "P", long: "vrrp", arg: "none" },
  { short: "C", long: "check", arg: "none" },
  { short: "B", long: "no_bfd", arg: "none" },
  { long: "all", arg: "none" },
  { short: "l", long: "log-console", arg: "none" },
  { short: "D", long: "log-detail", arg: "none" },
  { short: "S", long: "log-facility", arg: "required" },
  { short: "g", long: "log-file", arg: "optional" },
  { long: "flush-log-file", arg: "none" },
  { short: "G", long: "no-syslog", arg: "none" },
  { short: "u", long: "umask", arg: "required" },
  { short: "X", long: "release-vips", arg: "none" },
  { short: "V", long: "dont-release-vrrp", arg: "none" },
  { short: "I", long: "dont-release-ipvs", arg: "none" },
  { short: "R", long: "dont-respawn", arg: "none" },
  { short: "n", long: "dont-fork", arg: "none" },
  { short: "d", long: "dump-conf", arg: "none" },
  { short: "p", long: "pid", arg: "required" },
  { short: "r", long: "vrrp_pid", arg: "required" },
  { short: "c", long: "checkers_pid", arg: "required" },
  { short: "a", long: "address-monitoring", arg: "none" },
  { short: "b", long: "bfd_pid", arg: "required" },
  { short: "x", long: "snmp", arg: "none" },
  { short: "A", long: "snmp-agent-socket", arg: "required" },
  { short: "s", long: "namespace", arg: "required" },
  { short: "m", long: "core-dump", arg: "none" },
  { short: "M", long: "core-dump-pattern", arg: "optional" },
  { short: "e", long: "all-config", arg: "none" },
  { short: "i", long: "config-id", arg: "required" },
  { long: "signum", arg: "required" },
  { short: "t", long: "config-test", arg: "optional" },
  { long: "perf", arg: "optional" },
  { long: "debug", arg: "optional" },
  { long: "no-mem-check", arg: "none" },
  { short: "L", long: "mem-check-log", arg: "none" },
  { short: "T", long: "genhash", arg: "none" },
  { long: "ignore-sigint", arg: "none" },
  { short: "v", long: "version", arg: "none" },
  { short: "h", long: "help", arg: "none" },
];

/** Options vipd maps; every other accepted option is noted and ignored. */
const MEANINGFUL = new Set(["use-file", "log-console", "log-detail", "log-facility", "no-syslog", "umask", "dont-fork", "pid", "config-id", "signum", "config-test", "version", "help", "dont-respawn"]);

/** One parsed option: its long name and its argument, if any. */
export interface ParsedOption {
  name: string;
  value?: string;
  /** As the user wrote it (for messages). */
  text: string;
}

/** getopt_long over keepalived's table: bundles (-nlD), -fFILE, --opt=value, --opt value, `--`. */
export function parseKeepalivedArgs(argv: string[]): { options: ParsedOption[]; positionals: string[] } | string {
  const options: ParsedOption[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      // getopt_long accepts unambiguous prefixes of long names.
      const exact = OPTIONS.find((o) => o.long === name);
      const prefixed = OPTIONS.filter((o) => o.long.startsWith(name));
      const spec = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      if (!spec || !name) return `Unknown option ${a}`;
      if (spec.arg === "none" && eq >= 0) return `option '--${spec.long}' doesn't allow an argument`;
      let value = eq >= 0 ? a.slice(eq + 1) : undefined;
      if (spec.arg === "required" && value === undefined) {
        if (i + 1 >= argv.length) return `option '--${spec.long}' requires an argument`;
        value = argv[++i];
      }
      options.push({ name: spec.long, value, text: a });
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const spec = OPTIONS.find((o) => o.short === a[j]);
        if (!spec) return `invalid option -- '${a[j]}'`;
        if (spec.arg === "none") {
          options.push({ name: spec.long, text: `-${a[j]}` });
          continue;
        }
        const rest = a.slice(j + 1);
        let value: string | undefined = rest || undefined;
        if (spec.arg === "required" && !rest) {
          if (i + 1 >= argv.length) return `option requires an argument -- '${a[j]}'`;
          value = argv[++i];
        }
        options.push({ name: spec.long, value, text: `-${a[j]}` });
        break;
      }
      continue;
    }
    positionals.push(a);
  }
  return { options, positionals };
}

/** keepalived's -h text, with a line saying this is vipd. */
export function keepalivedHelp(): string {
  return [
    "Usage: keepalived [OPTION...]",
    `  (vipd's keepalived-compatible command line: ${versionLine()})`,
    "  -f, --use-file=FILE          Use the specified configuration file",
    "                                default '/etc/keepalived/keepalived.conf'",
    "  -l, --log-console            Log messages to local console",
    "  -D, --log-detail             Detailed log messages",
    "  -S, --log-facility=([0-7]|local[0-7]|user|daemon)",
    "                               Set syslog facility to LOG_LOCAL[0-7], user or daemon (default)",
    "  -G, --no-syslog              Don't log via syslog",
    "  -u, --umask=MASK             umask for file creation (in numeric form)",
    "  -n, --dont-fork              Don't fork the daemon process",
    "  -p, --pid=FILE               Use specified pidfile for parent process",
    "  -i, --config-id id           Skip any configuration lines beginning '@' that don't match id",
    "      --signum=SIGFUNC         Return signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON",
    "  -t, --config-test[=LOG_FILE] Check the configuration for obvious errors, output to",
    "                                stderr by default",
    "  -v, --version                Display the version number",
    "  -h, --help                   Display this help message",
    "  Also accepted and ignored (one notice): -P -C -B --all -g -G --flush-log-file -X -V -I -R -d",
    "  -r -c -b -a -x -A -s -m -M -e --perf --debug --no-mem-check -L --ignore-sigint",
    "",
  ].join("\n");
}

/** What the command line asks for, decided without side effects (tested directly). */
export type CompatPlan =
  | { kind: "exit"; code: number; stdout?: string; stderr?: string }
  | { kind: "check"; argv: string[]; logFile?: string; notice?: string }
  | { kind: "run"; argv: string[]; fork: boolean; pidFile: string; umask?: number; notice?: string };

/** The keepalived default pid file (vipd runs one process, so only the parent's matters). */
export const KEEPALIVED_PID_FILE = "/run/keepalived.pid";

/** Maps keepalived's arguments onto a vipd action. `signum` gives the number for a sigfunc name. */
export function planKeepalived(argv: string[], signum: (name: string) => number | undefined): CompatPlan {
  const parsed = parseKeepalivedArgs(argv);
  if (typeof parsed === "string") return { kind: "exit", code: 1, stderr: `${parsed}\n` };
  const { options } = parsed;
  const has = (n: string) => options.some((o) => o.name === n);
  const last = (n: string) => options.filter((o) => o.name === n).at(-1)?.value;
  if (has("help")) return { kind: "exit", code: 0, stderr: keepalivedHelp() };
  if (has("version")) {
    return { kind: "exit", code: 0, stderr: `Keepalived v${KEEPALIVED_COMPAT_VERSION} (compatible), provided by ${versionLine()}\n` };
  }
  if (has("signum")) {
    const name = last("signum") ?? "";
    const n = signum(name);
    return n === undefined ? { kind: "exit", code: 1, stderr: `Unknown sigfunc ${name}\n` } : { kind: "exit", code: 0, stdout: `${n}\n` };
  }
  if (has("genhash")) return { kind: "exit", code: 1, stderr: "genhash mode (-T) is not provided by vipd\n" };
  const ignored = [...new Set(options.filter((o) => !MEANINGFUL.has(o.name)).map((o) => o.text.split("=")[0]!))];
  if (parsed.positionals.length) ignored.push(...parsed.positionals.map((p) => `'${p}'`));
  const notice = ignored.length ? `keepalived option(s) ${ignored.join(" ")} mean nothing to vipd and are ignored` : undefined;
  const common: string[] = [];
  const file = last("use-file");
  if (file !== undefined) common.push("-f", file);
  const id = last("config-id");
  if (id !== undefined) common.push("--config-id", id);
  if (has("config-test")) {
    const logFile = last("config-test") || undefined;
    const note = logFile ? `${notice ? `${notice}; ` : ""}the -t log file ${logFile} is not written: results go to stderr` : notice;
    return { kind: "check", argv: common, logFile, notice: note };
  }
  const run = [...common];
  if (has("log-console")) run.push("--log-console");
  if (has("log-detail")) run.push("--log-detail");
  if (has("no-syslog")) run.push("--no-syslog");
  const facility = last("log-facility");
  if (facility !== undefined) run.push("--log-facility", facility);
  const pidFile = last("pid") ?? KEEPALIVED_PID_FILE;
  run.push("--pid-file", pidFile);
  let umask: number | undefined;
  const um = last("umask");
  if (um !== undefined) {
    // keepalived reads it with strtoul(base 0): 0177 octal, 0x.. hex, else decimal.
    umask = um.startsWith("0x") ? parseInt(um.slice(2), 16) : um.startsWith("0") ? parseInt(um, 8) : parseInt(um, 10);
    if (!Number.isInteger(umask) || umask < 0 || umask > 0o777) return { kind: "exit", code: 1, stderr: `Invalid umask '${um}'\n` };
  }
  return { kind: "run", argv: run, fork: !has("dont-fork"), pidFile, umask, notice };
}

/** Runs keepalived's command line. */
export async function main(argv: string[]): Promise<number> {
  const nums = await signalNumbersNow();
  const plan = planKeepalived(argv, (name) => (Object.hasOwn(nums, name) ? nums[name] : undefined));
  if (plan.kind === "exit") {
    if (plan.stdout) process.stdout.write(plan.stdout);
    if (plan.stderr) process.stderr.write(plan.stderr);
    return plan.code;
  }
  if (plan.notice) process.stderr.write(`vipd: ${plan.notice}\n`);
  if (plan.kind === "check") {
    const { main: check } = await import("./check.ts");
    return await check(plan.argv);
  }
  if (plan.umask !== undefined) {
    process.umask(plan.umask);
    process.env.VIPD_UMASK_FROM_CMDLINE = "1"; // the config's umask then yields, as keepalived's (also across the fork)
  }
  if (plan.fork) return await forkDaemon(argv, plan.pidFile);
  const { main: run } = await import("./run.ts");
  return await run(plan.argv);
}

/** keepalived's signal numbers on this libc (FFI: SIGRTMIN differs between glibc and musl). */
async function signalNumbersNow(): Promise<Record<string, number>> {
  const rt = await import("../../ffi/rt-signal.ts");
  const { signalNumbers } = await import("../daemon/signals.ts");
  return signalNumbers(rt.sigrtmin(), rt.sigrtmax());
}

/**
 * Without -n keepalived detaches and the command returns once the daemon runs (sysvinit
 * scripts rely on it). vipd cannot fork(), so it starts itself again with -n in a new
 * session and waits (≤ 10 s) for the pid file to name that child.
 */
async function forkDaemon(argv: string[], pidFile: string): Promise<number> {
  const compiled = process.argv[1]?.startsWith("/$bunfs/") ?? false;
  const self = compiled ? [process.execPath] : [process.execPath, process.argv[1]!];
  const child = Bun.spawn([...self, "keepalived", "-n", ...argv], { stdio: ["ignore", "ignore", "ignore"], detached: true });
  child.unref();
  const deadline = performance.now() + 10_000;
  for (let i = 0; i < 1000 && performance.now() < deadline; i++) {
    if (child.exitCode !== null) {
      process.stderr.write(`vipd: the daemon exited at once with status ${child.exitCode}\n`);
      return child.exitCode || 1;
    }
    if (existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() === String(child.pid)) return 0;
    await Bun.sleep(10);
  }
  process.stderr.write(`vipd: daemon (pid ${child.pid}) did not write ${pidFile} within 10 s\n`);
  return 1;
}
