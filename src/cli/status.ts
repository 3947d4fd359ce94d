/**
 * `vipd status`: ask a running daemon over its control socket and print its VRRP instances —
 * as a table per instance, as vipd's JSON (`--json`), or as keepalived's JSON dump
 * (`--keepalived-json`, layout `--json-version 1|2`). Exit 0 on success, 1 when the daemon
 * cannot be reached or refuses, 2 on bad arguments.
 */
import { ControlError, DEFAULT_CONTROL_PATH, request } from "../daemon/control-client.ts";
import { renderKeepalivedJson, toKeepalivedJson } from "../daemon/keepalived-json.ts";
import type { DaemonStatus, VrrpInstanceStatus } from "../daemon/status-types.ts";
import type { VrrpStats } from "../vrrp/types.ts";
import { parseCommandArgs } from "./config-args.ts";

const USAGE = "[--control PATH] [--json | --keepalived-json [--json-version 1|2]] [--timeout MS]";

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    "status",
    argv,
    {
      control: { type: "string", short: "c" },
      json: { type: "boolean" },
      "keepalived-json": { type: "boolean" },
      "json-version": { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    USAGE,
  );
  if (typeof args === "number") return args;
  const v = args.values;
  const fail = (msg: string): number => {
    process.stderr.write(`vipd status: ${msg}\nusage: vipd status ${USAGE}\n`);
    return 2;
  };
  if (args.positionals.length > 0) return fail(`unexpected argument '${args.positionals[0]}'`);
  if (v.json && v["keepalived-json"]) return fail("--json and --keepalived-json exclude each other");
  const jsonVersion = v["json-version"] === undefined ? 1 : Number(v["json-version"]);
  if (jsonVersion !== 1 && jsonVersion !== 2) return fail("--json-version must be 1 or 2");
  const timeoutMs = v.timeout === undefined ? 2000 : Number(v.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) return fail("--timeout must be a positive number of milliseconds");
  const path = (v.control as string | undefined) ?? DEFAULT_CONTROL_PATH;

  let status: DaemonStatus;
  try {
    status = asStatus(await request(path, "status", timeoutMs));
  } catch (err) {
    const msg = err instanceof ControlError ? err.message : `unexpected answer from ${path}: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`vipd status: ${msg}\n`);
    return 1;
  }
  if (v.json) process.stdout.write(JSON.stringify(status, null, 2) + "\n");
  else if (v["keepalived-json"]) process.stdout.write(renderKeepalivedJson(toKeepalivedJson(status, jsonVersion)));
  else process.stdout.write(formatStatus(status, Date.now()));
  return 0;
}

/** Checks the shape of a status answer enough that formatting cannot trip over it. */
function asStatus(x: unknown): DaemonStatus {
  const s = x as Partial<DaemonStatus> | null;
  if (typeof s !== "object" || s === null || !Array.isArray(s.instances)) throw new Error("not a status object");
  for (const i of s.instances) {
    if (typeof i !== "object" || i === null || typeof i.name !== "string" || typeof i.stats !== "object" || i.stats === null) {
      throw new Error("malformed instance in status");
    }
  }
  return s as DaemonStatus;
}

/** Counters that describe normal traffic; every other counter is an error/drop reason. */
const TRAFFIC_COUNTERS = new Set<keyof VrrpStats>(["advert_rcvd", "advert_sent", "become_master", "release_master", "pri_zero_rcvd", "pri_zero_sent"]);

/** The human report: a header line, then one key/value table per instance. `nowMs` is wall-clock ms. */
export function formatStatus(status: DaemonStatus, nowMs: number): string {
  const out: string[] = [];
  const up = Number.isFinite(status.startedAt) ? ` up ${formatDuration(nowMs / 1000 - status.startedAt)},` : "";
  out.push(`vipd ${status.version}, pid ${status.pid},${up} config ${status.configFile}${status.routerId ? `, router_id ${status.routerId}` : ""}`);
  if (status.instances.length === 0) out.push("", "no VRRP instances");
  for (const i of status.instances) out.push("", ...formatInstance(i, nowMs));
  if (status.lvs) out.push("", ...formatLvs(status.lvs));
  if (status.bfd?.length) out.push("", ...formatBfd(status.bfd));
  return out.join("\n") + "\n";
}

/** BFD sessions: state, peer, agreed intervals and detection time. */
function formatBfd(sessions: NonNullable<DaemonStatus["bfd"]>): string[] {
  return sessions.map((b) => {
    const diag = b.state === "Up" ? "" : ` (${b.localDiag})`;
    const timers = b.state === "Up" ? `tx ${b.localTxIntervalMs} ms, detect ${b.detectTimeMs} ms` : `idle tx ${b.localTxIntervalMs} ms`;
    return `bfd ${b.name} ${b.state}${diag}, neighbor ${b.neighbor}${b.multihop ? " (multihop)" : ""}, remote ${b.remoteState}, ${timers}, sent ${b.sent}, received ${b.received}`;
  });
}

/** Virtual servers: quorum, real servers with their weights (configured, effective, in IPVS) and checkers. */
function formatLvs(l: NonNullable<DaemonStatus["lvs"]>): string[] {
  if (!l.available) return [`LVS: unavailable${l.reason ? ` (${l.reason})` : ""}`];
  const out: string[] = [];
  for (const vs of l.virtualServers) {
    const quorum = `quorum ${vs.quorum}${vs.hysteresis ? `±${vs.hysteresis}` : ""}: ${vs.quorumUp ? "up" : "DOWN"} (alive weight ${vs.weightSum})`;
    out.push(`virtual server ${vs.label} ${vs.scheduler}, ${quorum}${vs.suspended ? ", checkers suspended (ha_suspend)" : ""}`);
    for (const rs of vs.realServers) {
      const checks = rs.checkers.map((c) => `${c.type} ${c.hasRun ? (c.up ? "up" : "down") : "pending"}${c.latencyMs !== undefined ? ` ${c.latencyMs.toFixed(1)} ms` : ""}`).join(", ");
      out.push(`  ${rs.alive ? "UP  " : "DOWN"} ${rs.address}:${rs.port} ${rs.fwdMethod} weight ${rs.configuredWeight}/${rs.effectiveWeight}, ipvs ${rs.ipvsWeight ?? "-"}${checks ? `  [${checks}]` : ""}`);
    }
    if (vs.sorryServer) out.push(`  sorry server ${vs.sorryServer.address}:${vs.sorryServer.port}${vs.sorryServer.active ? " (ACTIVE)" : ""}`);
  }
  return out;
}

function formatInstance(i: VrrpInstanceStatus, nowMs: number): string[] {
  const rows: [string, string][] = [];
  const want = i.wantState && i.wantState !== i.state ? ` (configured ${i.wantState})` : "";
  rows.push(["state", `${i.state}${want}`]);
  rows.push(["priority", `base ${i.basePriority}, effective ${i.effectivePriority}`]);
  const us = i.state === "MASTER" && (i.masterAddress === undefined || i.masterAddress === i.sourceAddress);
  const master = i.masterAddress ?? (i.state === "MASTER" ? "this node" : "unknown");
  rows.push(["master", `${master}${us && i.masterAddress !== undefined ? " (this node)" : ""}${i.masterPriority ? `, priority ${i.masterPriority}` : ""}`]);
  const adopted = i.masterAdvertInt !== i.advertInt ? ` (master's ${formatSeconds(i.masterAdvertInt)})` : "";
  rows.push(["advert interval", `${formatSeconds(i.advertInt)}${adopted}`]);
  rows.push(["VIPs", `${i.vips.length ? i.vips.join(", ") : "none"}${i.vips.length || i.evips.length ? (i.vipsSet ? " (installed)" : " (not installed)") : ""}`]);
  if (i.evips.length) rows.push(["excluded VIPs", i.evips.join(", ")]);
  const s = i.stats;
  rows.push(["adverts", `sent ${s.advert_sent}, received ${s.advert_rcvd}`]);
  rows.push(["transitions", `became master ${s.become_master}, released master ${s.release_master}`]);
  if (s.pri_zero_sent || s.pri_zero_rcvd) rows.push(["priority 0", `sent ${s.pri_zero_sent}, received ${s.pri_zero_rcvd}`]);
  const errors = Object.entries(s)
    .filter(([k, n]) => !TRAFFIC_COUNTERS.has(k as keyof VrrpStats) && typeof n === "number" && n !== 0)
    .map(([k, n]) => `${k} ${n}`);
  rows.push(["errors", errors.length ? errors.join(", ") : "none"]);
  if (i.faults.length) rows.push(["faults", i.faults.join(", ")]);
  rows.push(["last transition", formatTransition(i.lastTransition, nowMs)]);

  const family = i.family === "inet6" ? "IPv6" : "IPv4";
  const head = `${i.name}  ${i.interface ?? "(no interface)"}  VRID ${i.vrid}  ${family}  VRRPv${i.version}`;
  const width = Math.max(...rows.map(([k]) => k.length));
  return [head, ...rows.map(([k, val]) => `  ${k.padEnd(width)}  ${val}`)];
}

/** "2026-11-22 03:05:57 (12s ago)" in local time; "never" for an unset time. */
export function formatTransition(epochSeconds: number, nowMs: number): string {
  if (!Number.isFinite(epochSeconds) || epochSeconds <= 0) return "never";
  const d = new Date(epochSeconds * 1000);
  const p = (n: number): string => String(n).padStart(2, "0");
  const local = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return `${local} (${formatDuration(nowMs / 1000 - epochSeconds)} ago)`;
}

/** Seconds as "42s", "5m 3s", "2h 5m", "3d 4h". */
export function formatDuration(seconds: number): string {
  const t = Math.max(0, Math.floor(seconds));
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m ${t % 60}s`;
  if (t < 86400) return `${Math.floor(t / 3600)}h ${Math.floor((t % 3600) / 60)}m`;
  return `${Math.floor(t / 86400)}d ${Math.floor((t % 86400) / 3600)}h`;
}

function formatSeconds(s: number): string {
  return `${Number(s.toFixed(3))}s`;
}
