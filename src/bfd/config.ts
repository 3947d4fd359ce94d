/**
 * bfd_instance blocks of the config model → session configurations, with keepalived's
 * defaults and limits (bfd_parser.c): min_rx/min_tx 10 ms, idle_tx 1000 ms (not below),
 * multiplier 5, TTL 255 (IPv4) / hop limit 64 (IPv6), max_hops 0 capped at the TTL.
 */
import type { Doc } from "../config/schema/kinds.ts";
import type { BfdSessionConfig } from "./session.ts";

export const BFD_CONTROL_PORT = 3784;
export const BFD_MULTIHOP_CONTROL_PORT = 4784;
/** RFC 5881 §4: source ports 49152–65535. */
export const BFD_MIN_SOURCE_PORT = 49152;
export const BFD_MAX_SOURCE_PORT = 65535;

/** One bfd_instance, ready to run. */
export interface BfdInstanceConfig {
  session: BfdSessionConfig;
  family: "inet" | "inet6";
  neighbor: string;
  source?: string;
  multihop: boolean;
  /** Which side receives its events (keepalived's `vrrp` / `checker`; neither given = both). */
  toVrrp: boolean;
  toChecker: boolean;
}

/** Resolves every bfd_instance; `warnings` are keepalived's configuration messages. */
export function bfdInstances(blocks: Record<string, Doc>): { instances: BfdInstanceConfig[]; warnings: string[] } {
  const instances: BfdInstanceConfig[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const [name, d] of Object.entries(blocks)) {
    const neighbor = typeof d.neighbor_ip === "string" ? d.neighbor_ip : undefined;
    if (!neighbor) {
      warnings.push(`Configuration error: BFD instance ${name} has no neighbor address set, disabling instance`);
      continue;
    }
    const family = neighbor.includes(":") ? "inet6" : "inet";
    const source = typeof d.source_ip === "string" ? d.source_ip : undefined;
    if (source && source.includes(":") !== (family === "inet6")) {
      warnings.push(`Configuration error: BFD instance ${name} source address ${source} and neighbor address ${neighbor} are not of the same family, disabling instance`);
      continue;
    }
    const key = `${neighbor}|${source ?? ""}`;
    if (seen.has(key) || seen.has(`${neighbor}|`)) {
      warnings.push(`Configuration error: BFD instance ${name} has duplicate neighbor address ${neighbor}, ignoring instance`);
      continue;
    }
    seen.add(key);
    const num = (k: string): number | undefined => (typeof d[k] === "number" ? (d[k] as number) : undefined);
    let idleTx = num("idle_tx") ?? 1000;
    if (idleTx < 1000) {
      warnings.push(`Configuration error: BFD instance ${name} idle_tx value ${idleTx} is not valid (must be in range [1000-4294967]), ignoring`);
      idleTx = 1000;
    }
    // `ttl` and `hoplimit` set the same value in keepalived; the family's own keyword wins here
    const ttl = (family === "inet" ? num("ttl") ?? num("hoplimit") : num("hoplimit") ?? num("ttl")) ?? (family === "inet" ? 255 : 64);
    let maxHops = num("max_hops") ?? 0;
    if (maxHops < 0) maxHops = 255; // -1 stored in keepalived's uint8_t: no check
    if (maxHops > ttl) {
      warnings.push(`BFD instance ${name}: max_hops exceeds ttl/hoplimit - setting to ttl/hoplimit`);
      maxHops = ttl;
    }
    const vrrpFlag = d.vrrp === true;
    const checkerFlag = d.checker === true;
    instances.push({
      session: {
        name, minRxUs: Math.round((num("min_rx") ?? 10) * 1000), minTxUs: Math.round((num("min_tx") ?? 10) * 1000), idleTxUs: Math.round(idleTx * 1000),
        detectMult: num("multiplier") ?? 5, passive: d.passive === true, ttl, maxHops,
      },
      family, neighbor, ...(source ? { source } : {}), multihop: d.multihop === true,
      toVrrp: vrrpFlag || !checkerFlag, toChecker: checkerFlag || !vrrpFlag,
    });
  }
  return { instances, warnings };
}
