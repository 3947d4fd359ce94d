/**
 * What the failover benchmark reads back: VRRP adverts and ARP frames from a tcpdump capture
 * (with the capture's own timestamps), reply times from `ping -D`, and CPU/memory of a
 * process from /proc.
 */
import { readFileSync, readdirSync } from "node:fs";
import { decodeIpv4Advert } from "../../src/vrrp/codec.ts";
import { linkFrame, readPcap } from "../../test/unit/pcap.ts";

const IPPROTO_VRRP = 112;
const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;

/** One frame of interest on the wire; `t` is the capture timestamp in seconds (wall clock). */
export type WireEvent =
  | { t: number; kind: "advert"; src: string; vrid: number; priority: number }
  | { t: number; kind: "arp"; srcMac: string; senderIp: string };

const ipText = (b: Uint8Array): string => Array.from(b.subarray(0, 4)).join(".");
const macText = (b: Uint8Array): string => Array.from(b.subarray(0, 6), (x) => x.toString(16).padStart(2, "0")).join(":");

/** Reads the VRRP adverts and ARP frames of an Ethernet capture, in capture order. */
export function readWire(pcapPath: string): WireEvent[] {
  const pcap = readPcap(pcapPath);
  const scale = pcap.nanosecond ? 1e-9 : 1e-6;
  const events: WireEvent[] = [];
  for (const rec of pcap.records) {
    const t = rec.tsSec + rec.tsFrac * scale;
    const f = linkFrame(pcap.linkType, rec.data);
    if (f.etherType === ETH_P_IP && f.payload[9] === IPPROTO_VRRP) {
      const d = decodeIpv4Advert(f.payload);
      if (d.ok) events.push({ t, kind: "advert", src: ipText(d.value.ip.src), vrid: d.value.advert.vrid, priority: d.value.advert.priority });
    } else if (f.etherType === ETH_P_ARP && f.payload.length >= 28) {
      // ARP for IPv4 over Ethernet: sender MAC at 8, sender IP at 14.
      events.push({ t, kind: "arp", srcMac: macText(f.payload.subarray(8)), senderIp: ipText(f.payload.subarray(14)) });
    }
  }
  return events;
}

/** The wire view of one failover: the old master's last advert and the new master's first after it. */
export interface WireFailover {
  /** New master's first advert minus old master's last advert, in ms. */
  gapMs: number;
  /** Priority of the old master's last advert (0 for a graceful stop). */
  lastPriority: number;
  /** The new master's first gratuitous ARP for the VIP, relative to the old master's last advert (ms). */
  garpMs: number | null;
  /** Wall-clock time of the old master's last advert (s). */
  lastAdvertT: number;
}

/** Finds the failover from `oldSrc` to `newSrc` in a capture; null if either side is missing. */
export function wireFailover(events: WireEvent[], oldSrc: string, newSrc: string, newMac: string, vip: string): WireFailover | null {
  const adverts = events.filter((e): e is Extract<WireEvent, { kind: "advert" }> => e.kind === "advert");
  const last = adverts.filter((e) => e.src === oldSrc).at(-1);
  if (!last) return null;
  const first = adverts.find((e) => e.src === newSrc && e.t > last.t);
  if (!first) return null;
  const garp = events.find((e) => e.kind === "arp" && e.t > last.t && e.srcMac === newMac && e.senderIp === vip);
  return {
    gapMs: (first.t - last.t) * 1000,
    lastPriority: last.priority,
    garpMs: garp ? (garp.t - last.t) * 1000 : null,
    lastAdvertT: last.t,
  };
}

/** Reply receive times (s, wall clock) from `ping -D` output. */
export function pingReplies(stdout: string): number[] {
  const out: number[] = [];
  for (const m of stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=\d+/gm)) out.push(Number(m[1]));
  return out;
}

/** The client's outage: the longest gap between consecutive replies that ends after `fromT` (ms). */
export function pingOutage(replies: number[], fromT: number): { outageMs: number; before: number; after: number } | null {
  let best = -1;
  let at = -1;
  for (let i = 1; i < replies.length; i++) {
    if (replies[i]! <= fromT) continue;
    const gap = replies[i]! - replies[i - 1]!;
    if (gap > best) {
      best = gap;
      at = i;
    }
  }
  if (at < 0) return null;
  return { outageMs: best * 1000, before: replies[at - 1]!, after: replies[at]! };
}

/** CPU time (utime + stime, all threads) of a process in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields after the comm start at field 3 (state); utime is field 14, stime field 15.
  return Number(fields[14 - 3]) + Number(fields[15 - 3]);
}

/** CPU time of all live threads of a process in ns, from /proc/PID/task/TID/schedstat (finer than ticks). */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {} // the thread exited meanwhile
  }
  return total;
}

/** Resident memory of a process in KiB: VmRSS, and PSS (shared pages split between sharers). */
export function memoryKiB(pid: number): { rss: number; pss: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  let pss = NaN;
  try {
    pss = Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? NaN);
  } catch {}
  return { rss, pss };
}

/** Number of threads of a process. */
export function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

/** Clock ticks per second (USER_HZ); 100 on every Linux we target. */
export const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;
