/**
 * `vipd run --dry-run`: reads the config and the kernel's current state (links, addresses,
 * routes, rules, sysctls: netlink dumps and /proc reads, no privileges, no raw sockets) and
 * prints what `vipd run` would change at start, then exits without changing anything.
 * IPVS: the plan hook is `ipvsPlan` below; it lists the desired virtual servers until the
 * LVS manager can reconcile against a read-only table dump.
 */
import type { Model } from "../config/model.ts";
import { type HostSnapshot, type PlannedChange, PlanningHost, ruleIdentity } from "../daemon/dry-run-host.ts";
import type { Logger } from "../daemon/logger.ts";
import { VrrpRuntime } from "../daemon/vrrp-runtime.ts";
import { routeKey } from "../vrrp/routes.ts";
import { versionLine } from "../version.ts";

/** Prints the planned changes to stdout; returns the exit code (0, or 1 when the kernel cannot be read). */
export async function dryRun(model: Model, path: string, log: Logger): Promise<number> {
  let snap: HostSnapshot;
  try {
    snap = await readSnapshot();
  } catch (e) {
    log.error(`cannot read the kernel's state: ${(e as Error).message}`);
    return 1;
  }
  const host = new PlanningHost(snap);
  // info lines narrate changes as if made; the plan below says it instead
  const quiet: Logger = { info() {}, debug() {}, warn: (m) => log.warn(m), error: (m) => log.error(m) };
  const runtime = new VrrpRuntime(model, host, quiet, { version: versionLine(), configFile: path });
  runtime.start();
  const out = [`# vipd run --dry-run: what starting with ${path} would change (nothing was changed)`];
  out.push(...formatPlan(host.changes));
  out.push(...ipvsPlan(model));
  out.push(...masterPlan(model));
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

/** The planned changes in order, one line each (nft scripts indented under theirs). */
export function formatPlan(changes: readonly PlannedChange[]): string[] {
  if (!changes.length) return ["no changes at start"];
  return changes.map((c) => `${c.op} ${c.kind} ${c.text}`);
}

/** IPVS entries: the hook for the LVS manager's plan (today: what would be programmed). */
function ipvsPlan(model: Model): string[] {
  if (!model.virtual_server.length) return [];
  const out = ["# IPVS (desired table; comparing with the kernel's table needs CAP_NET_ADMIN and is not done in a dry run yet):"];
  for (const vs of model.virtual_server) {
    out.push(`add ipvs service ${vs.protocol} ${vs.id} scheduler ${vs.lvs_sched} method ${vs.lvs_method}`);
    for (const rs of vs.real_servers) out.push(`add ipvs real-server ${vs.id} -> ${rs.ip}${rs.port !== undefined ? `:${rs.port}` : ""} weight ${rs.weight} (once its checkers pass)`);
  }
  return out;
}

/** What each instance adds later, on becoming MASTER (not at start unless it owns the address). */
function masterPlan(model: Model): string[] {
  const out: string[] = [];
  for (const m of model.vrrp_instance) {
    const vips = m.virtual_ipaddress.map((v) => `${v.address}/${v.prefixlen}${v.dev ? ` dev ${v.dev}` : ""}`);
    const routes = ((m.doc.virtual_routes as unknown[] | undefined) ?? []).length;
    const rules = ((m.doc.virtual_rules as unknown[] | undefined) ?? []).length;
    out.push(`# (${m.name}) when MASTER: add ${vips.join(", ") || "no VIPs"}${routes ? `, ${routes} virtual route(s)` : ""}${rules ? `, ${rules} virtual rule(s)` : ""}`);
  }
  return out;
}

/** Links, addresses, routes and rules by netlink dump; sysctls from /proc. Read-only. */
async function readSnapshot(): Promise<HostSnapshot> {
  const { RtNetlink, IFA_F_SECONDARY } = await import("../../ffi/rtnetlink.ts");
  const { dumpRoutes, dumpRules } = await import("../../ffi/rtnetlink-route.ts");
  const { readSysctl, sysctlPath } = await import("../../ffi/sysctl.ts");
  const { IFF_LOWER_UP, IFF_NOARP, IFF_RUNNING, IFF_UP } = await import("../../ffi/packet-socket.ts");
  const nl = new RtNetlink();
  try {
    return {
      links: nl.dumpLinks().map((l) => ({
        ifindex: l.ifindex, name: l.name, mac: l.mac,
        up: (l.flags & IFF_UP) !== 0 && (l.flags & (IFF_RUNNING | IFF_LOWER_UP)) !== 0, noarp: (l.flags & IFF_NOARP) !== 0,
      })),
      addresses: nl.dumpAddresses().map((a) => ({
        ifindex: a.ifindex, family: a.family, address: a.address, prefixlen: a.prefixlen,
        secondary: (a.flags & IFA_F_SECONDARY) !== 0, scope: a.scope, ...(a.label ? { label: a.label } : {}),
      })),
      routes: dumpRoutes(nl).map((r) => routeKey(r)),
      rules: dumpRules(nl).map((r) => ruleIdentity(r)),
      readSysctl: (c) => {
        try {
          const v = readSysctl(sysctlPath("net", c.proto, "conf", c.ifname, c.key));
          return v === null ? null : Number(v);
        } catch {
          return null;
        }
      },
    };
  } finally {
    nl.close();
  }
}
