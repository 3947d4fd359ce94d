/** What the daemon reports about itself: the data behind `vipd status`, the JSON dump and metrics. */
import type { VrrpStats } from "../vrrp/types.ts";

export interface VrrpInstanceStatus {
  name: string;
  interface: string | undefined;
  family: "inet" | "inet6";
  vrid: number;
  version: 2 | 3;
  /** INIT | BACKUP | MASTER | FAULT */
  state: string;
  /** The configured wish (MASTER/BACKUP). */
  wantState: string;
  basePriority: number;
  effectivePriority: number;
  /** Configured advert interval, seconds. */
  advertInt: number;
  /** The interval the current master advertises (v3 adoption), seconds. */
  masterAdvertInt: number;
  /** Address of the current master as far as we know (ours when MASTER). */
  masterAddress: string | undefined;
  masterPriority: number;
  sourceAddress: string | undefined;
  vips: string[];
  evips: string[];
  /** Are our VIPs installed right now? */
  vipsSet: boolean;
  authType: "NONE" | "PASS" | "AH";
  nopreempt: boolean;
  preemptDelay: number;
  accept: boolean;
  faults: string[];
  /** Wall-clock time of the last state change, seconds since the epoch (fractional). */
  lastTransition: number;
  stats: VrrpStats;
  /** Other fields keepalived's JSON dump carries (garp_*, script paths, ...). */
  extra: Record<string, unknown>;
}

export interface DaemonStatus {
  version: string;
  pid: number;
  configFile: string;
  /** Seconds since the epoch when the daemon started. */
  startedAt: number;
  routerId: string;
  instances: VrrpInstanceStatus[];
  /** Virtual and real servers (absent when the config has no LVS). */
  lvs?: import("../lvs/manager.ts").LvsStatus;
  /** BFD sessions (absent when the config has no bfd_instance). */
  bfd?: import("./bfd-runtime.ts").BfdSessionStatus[];
  /** Optional global fields of keepalived's JSON v2 dump (`track_process`: an array of objects). */
  extra?: Record<string, unknown>;
}

/** Anything that can answer `status`. */
export interface StatusProvider {
  status(): DaemonStatus;
}
