/**
 * `vipd doctor [-f FILE] [--json]`: checks the host for what this config needs (kernel
 * features, firewall, sysctls, capabilities, libstdc++ on musl, the config itself) and names
 * the fix for each problem. Read-only. Exit 0 ok, 1 warnings, 2 something will not work.
 */
import { existsSync, readFileSync } from "node:fs";
import { loadConfig } from "../config/load.ts";
import { formatFindings, runDoctor } from "../doctor/checks.ts";
import { type DoctorProbe, doctorExitCode } from "../doctor/types.ts";
import { target } from "../version.ts";
import { configOptions, configPath, parseCommandArgs } from "./config-args.ts";

const USAGE = "[-f FILE] [--config-id ID] [--json]";
const SBIN = "/usr/sbin:/sbin:/usr/local/sbin:/usr/bin:/bin";

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("doctor", argv, { ...configOptions, json: { type: "boolean" } }, USAGE);
  if (typeof args === "number") return args;
  const path = configPath(args.values);
  const loaded = loadConfig(path, { configId: args.values["config-id"] as string | undefined });
  const probe = await realProbe();
  const findings = runDoctor({ configPath: path, loaded, model: loaded.missing ? undefined : loaded.model, probe });
  const code = doctorExitCode(findings);
  if (args.values.json === true) process.stdout.write(`${JSON.stringify({ config: path, exit: code, findings }, null, 2)}\n`);
  else process.stdout.write(formatFindings(findings));
  return code;
}

/** The host, read-only: files, bounded commands, and sockets opened and closed at once. */
async function realProbe(): Promise<DoctorProbe> {
  const libc = await import("../../ffi/libc.ts");
  const nl = await import("../../ffi/netlink.ts");
  const why = (e: unknown) => (e as Error).message;
  return {
    target,
    readFile(p) {
      try {
        return readFileSync(p, "utf8");
      } catch {
        return undefined;
      }
    },
    exists: (p) => existsSync(p),
    kernelConfig() {
      try {
        return new TextDecoder().decode(Bun.gunzipSync(readFileSync("/proc/config.gz")));
      } catch {
        try {
          return readFileSync(`/boot/config-${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}`, "utf8");
        } catch {
          return undefined;
        }
      }
    },
    run(argv) {
      const bin = Bun.which(argv[0]!) ?? Bun.which(argv[0]!, { PATH: SBIN });
      if (!bin) return undefined;
      const r = Bun.spawnSync([bin, ...argv.slice(1)], { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 5000 });
      return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    },
    rawSocket(family, protocol) {
      try {
        libc.close(libc.socket(family === "inet" ? libc.AF_INET : libc.AF_INET6, libc.SOCK_RAW | libc.SOCK_CLOEXEC, protocol));
        return undefined;
      } catch (e) {
        return why(e);
      }
    },
    genlFamily(name) {
      let sock: InstanceType<typeof nl.NetlinkSocket> | undefined;
      try {
        sock = new nl.NetlinkSocket(nl.NETLINK_GENERIC, { timeoutMs: 2000 });
        nl.resolveGenlFamily(sock, name);
        return undefined;
      } catch (e) {
        return why(e);
      } finally {
        sock?.close();
      }
    },
    netlinkConnector() {
      try {
        libc.close(libc.socket(libc.AF_NETLINK, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC, 11 /* NETLINK_CONNECTOR */));
        return undefined;
      } catch (e) {
        return why(e);
      }
    },
  };
}
