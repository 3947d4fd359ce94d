/**
 * `vipd run --dry-run`: reads the config and the kernel's current state (links, addresses,
 * routes, rules, sysctls: netlink dumps and /proc reads, no privileges, no raw sockets) and
 * prints what `vipd run` would change at start, then exits without changing anything.
 * IPVS: the LVS manager plans against a read-only copy of the kernel's table (`ipvsPlan`).
 */
import { existsSync } from "node:fs";
import { Ipvs } from "../../ffi/ipvs.ts";
import { Nft } from "../../ffi/nft.ts";
import type { Model } from "../config/model.ts";
import { type HostSnapshot, type PlannedChange, PlanningHost } from "../daemon/dry-run-host.ts";
import type { Logger } from "../daemon/logger.ts";
import { VrrpRuntime } from "../daemon/vrrp-runtime.ts";
import { createLvsManager } from "../lvs/manager.ts";
import { type IpvsSnapshot, PlanningIpvs, snapshotIpvs } from "../lvs/planning-ipvs.ts";
import { routeKey, ruleIdentity } from "../vrrp/routes.ts";
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
  const quiet = quietLogger(log);
  const runtime = new VrrpRuntime(model, host, quiet, { version: versionLine(), configFile: path });
  runtime.start();
  const out = [`# vipd run --dry-run: what starting with ${path} would change (nothing was changed)`];
  out.push(...formatPlan(host.changes));
  out.push(...ipvsPlan(model, snap, log));
  out.push(...masterPlan(model));
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

/** Warnings and errors only: the daemon's info lines narrate changes as if made; the plan says them instead. */
function quietLogger(log: Logger): Logger {
  return { info() {}, debug() {}, warn: (m) => log.warn(m), error: (m) => log.error(m) };
}

/** The planned changes in order, one line each (nft scripts indented under theirs). */
export function formatPlan(changes: readonly PlannedChange[]): string[] {
  if (!changes.length) return ["no changes at start"];
  return changes.map((c) => `${c.op} ${c.kind} ${c.text}`);
}

/**
 * IPVS: the LVS manager starts against a planning copy of the kernel's table, so the plan is
 * exactly the diff `vipd run` would apply (nothing is written). Reading the table needs
 * CAP_NET_ADMIN; without it, or without IPVS, the plan is made against an empty table and says so.
 */
function ipvsPlan(model: Model, snap: HostSnapshot, log: Logger): string[] {
  if (!model.virtual_server.length && !model.global.doc.lvs_sync_daemon && !model.global.doc.lvs_flush) return [];
  const read = readIpvs();
  const out = [read.ok ? "# IPVS (compared with the kernel's table):" : `# IPVS (${read.why}; planned against an empty table):`];
  const planning = new PlanningIpvs(read.ok ? read.snap : emptyIpvs());
  const quiet = quietLogger(log);
  // nftables_ipvs: the marking table vipd would write, recorded instead of run
  const nftScripts: string[] = [];
  const nft = { available: new Nft({ warn: () => {} }).available, apply: async (script: string) => (nftScripts.push(script), { ok: true as const }) };
  const manager = createLvsManager(model, { log: quiet, openIpvs: () => ({ ok: true, ipvs: planning }), runScript: () => undefined, repairIntervalMs: 0, nft });
  manager.setLocalAddresses(snap.addresses.map((a) => a.address));
  manager.start();
  out.push(...(planning.changes.length ? planning.changes.map((c) => `${c.op} ipvs ${c.text}`) : ["no IPVS changes at start"]));
  for (const script of nftScripts) out.push("apply nft nftables_ipvs:", ...script.trim().split("\n").map((l) => `    ${l}`));
  for (const vs of manager.status().virtualServers) {
    for (const rs of vs.realServers) if (!rs.alive) out.push(`# (${vs.label}) real-server ${rs.address}:${rs.port} joins once its checkers pass (alpha)`);
    if (vs.suspended) out.push(`# (${vs.label}) ha_suspend: checkers wait until a service address is local`);
  }
  return out;
}

function emptyIpvs(): IpvsSnapshot {
  return { info: { version: "", versionCode: 0, connTableSize: 0 }, services: [], timeouts: { tcp: 900, tcpFin: 120, udp: 300 }, daemons: [] };
}

/** The kernel's IPVS table, read-only; never loads the module (a genl family lookup would). */
function readIpvs(): { ok: true; snap: IpvsSnapshot } | { ok: false; why: string } {
  if (!existsSync("/proc/net/ip_vs")) return { ok: false, why: "IPVS is not loaded (no /proc/net/ip_vs): vipd would load it" };
  const r = Ipvs.open();
  if (!r.ok) return { ok: false, why: r.message };
  try {
    return { ok: true, snap: snapshotIpvs(r.ipvs) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return { ok: false, why: code === "EPERM" ? "reading the IPVS table needs CAP_NET_ADMIN" : `cannot read the IPVS table: ${(e as Error).message}` };
  } finally {
    r.ipvs.close();
  }
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
  const { netSysctlPath, readSysctl } = await import("../../ffi/sysctl.ts");
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
          const v = readSysctl(netSysctlPath(c));
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
