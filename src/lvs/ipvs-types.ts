/**
 * The typed model of the kernel's IPVS table (services, destinations, sync daemons,
 * timeouts) and `IpvsApi`, the narrow interface through which the LVS core changes it.
 * Pure: the generic-netlink encoding lives in ffi/ipvs.ts; tests use a fake IpvsApi.
 */
import type { IpFamily } from "../net/addr.ts";

export type { IpFamily };

/** Transport protocol of an address:port virtual service. */
export type IpvsProtocol = "tcp" | "udp" | "sctp";

/** The schedulers keepalived accepts (`lvs_sched`); the kernel takes any loaded module name. */
export const IPVS_SCHEDULERS = [
  "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
] as const;

// Service flags (IP_VS_SVC_F_*). The kernel sets HASHED on every service it holds, so a
// dumped service shows it even when it was not requested.
export const IP_VS_SVC_F_PERSISTENT = 0x0001;
export const IP_VS_SVC_F_HASHED = 0x0002;
export const IP_VS_SVC_F_ONEPACKET = 0x0004;
export const IP_VS_SVC_F_SCHED1 = 0x0008;
export const IP_VS_SVC_F_SCHED2 = 0x0010;
export const IP_VS_SVC_F_SCHED3 = 0x0020;

/** keepalived's scheduler-flag keywords → IP_VS_SVC_F_* bits (sh/mh share flag-1/flag-2). */
export const IPVS_SVC_FLAG_KEYWORDS: Readonly<Record<string, number>> = {
  "flag-1": IP_VS_SVC_F_SCHED1,
  "flag-2": IP_VS_SVC_F_SCHED2,
  "flag-3": IP_VS_SVC_F_SCHED3,
  "sh-fallback": IP_VS_SVC_F_SCHED1,
  "sh-port": IP_VS_SVC_F_SCHED2,
  "mh-fallback": IP_VS_SVC_F_SCHED1,
  "mh-port": IP_VS_SVC_F_SCHED2,
  ops: IP_VS_SVC_F_ONEPACKET,
  hashed: IP_VS_SVC_F_HASHED,
};

/**
 * What identifies a virtual service: protocol + address + port, or a firewall mark.
 * Addresses are text ("192.0.2.100", "2001:db8::100"); ports are host numbers.
 */
export type IpvsServiceKey =
  | { family: IpFamily; protocol: IpvsProtocol; address: string; port: number; fwmark?: undefined }
  | { family: IpFamily; fwmark: number; protocol?: undefined; address?: undefined; port?: undefined };

/** The settable parameters of a virtual service. */
export interface IpvsServiceParams {
  /** Scheduler module name ("wrr"). */
  scheduler: string;
  /** IP_VS_SVC_F_* bits; set IP_VS_SVC_F_PERSISTENT together with a persistence `timeout`. */
  flags: number;
  /** Persistence timeout in seconds (0: not persistent). */
  timeout: number;
  /** Persistence granularity as a prefix length (0..32 for inet, 0..128 for inet6). */
  netmask: number;
  /** Persistence engine ("sip"), if any. */
  peName?: string;
}

/** A virtual service as programmed. */
export type IpvsService = IpvsServiceKey & IpvsServiceParams;

/** Traffic counters of a service or destination (STATS64 when the kernel has it). */
export interface IpvsStats {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/** A virtual service as the kernel reports it in a dump. */
export type IpvsServiceEntry = IpvsService & { stats?: IpvsStats };

/** Forwarding method: NAT (masquerading), DR (direct routing), TUN; LOCAL/BYPASS only appear in dumps. */
export type IpvsFwdMethod = "NAT" | "DR" | "TUN" | "LOCAL" | "BYPASS";
export type IpvsTunnelType = "ipip" | "gue" | "gre";
/** Tunnel checksum mode (IP_VS_TUNNEL_ENCAP_FLAG_*). */
export type IpvsTunnelCsum = "nocsum" | "csum" | "remcsum";

/** Tunnel encapsulation of a TUN destination; absent means plain ipip. */
export interface IpvsTunnel {
  type: IpvsTunnelType;
  /** UDP port for GUE (0 otherwise). */
  port: number;
  csum: IpvsTunnelCsum;
}

/** What identifies a real server within a service. */
export interface IpvsDestKey {
  address: string;
  port: number;
}

/** A real server (destination) of a service. */
export interface IpvsDestination extends IpvsDestKey {
  /** Address family of the real server (may differ from the service's only with TUN). */
  family: IpFamily;
  fwdMethod: IpvsFwdMethod;
  tunnel?: IpvsTunnel;
  weight: number;
  /** Upper / lower connection thresholds (0: none). */
  uThreshold: number;
  lThreshold: number;
}

/** A real server as the kernel reports it in a dump. */
export interface IpvsDestinationEntry extends IpvsDestination {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats?: IpvsStats;
}

export type IpvsDaemonState = "master" | "backup";

/** A kernel connection-sync daemon (`lvs_sync_daemon`). Optional fields: kernel defaults. */
export interface IpvsSyncDaemon {
  state: IpvsDaemonState;
  /** Interface the sync multicast goes out of / is received on. */
  mcastIfn: string;
  syncId: number;
  syncMaxLen?: number;
  /** Multicast group, IPv4 or IPv6 (default 224.0.0.81). */
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** Connection timeouts in seconds (`ipvsadm --set`); 0 in a set request means "unchanged". */
export interface IpvsTimeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}

/** IPVS_CMD_GET_INFO: the kernel's IPVS version and connection hash table size. */
export interface IpvsInfo {
  /** "1.2.1" */
  version: string;
  versionCode: number;
  connTableSize: number;
}

/** A refused IPVS request, as thrown by an IpvsApi: `code` is the errno name ("EEXIST"). */
export interface IpvsErrorLike {
  code: string;
  errno: number;
  message: string;
}

/**
 * The IPVS table of one network namespace. Methods throw an IpvsErrorLike when the kernel
 * refuses (EEXIST: already there; ESRCH: no such service; ENOENT: no such destination or
 * scheduler); ffi/ipvs.ts implements it over generic netlink.
 */
export interface IpvsApi {
  info(): IpvsInfo;
  services(): IpvsServiceEntry[];
  /** One service, or undefined when there is none with that key. */
  getService(key: IpvsServiceKey): IpvsServiceEntry | undefined;
  addService(s: IpvsService): void;
  editService(s: IpvsService): void;
  deleteService(key: IpvsServiceKey): void;
  destinations(key: IpvsServiceKey): IpvsDestinationEntry[];
  addDestination(key: IpvsServiceKey, d: IpvsDestination): void;
  editDestination(key: IpvsServiceKey, d: IpvsDestination): void;
  deleteDestination(key: IpvsServiceKey, d: IpvsDestKey): void;
  /** Removes every service and destination. */
  flush(): void;
  /** Zeroes counters of one service, or of all. */
  zero(key?: IpvsServiceKey): void;
  timeouts(): IpvsTimeouts;
  setTimeouts(t: Partial<IpvsTimeouts>): void;
  daemons(): IpvsSyncDaemon[];
  startDaemon(d: IpvsSyncDaemon): void;
  stopDaemon(state: IpvsDaemonState): void;
  close(): void;
}

/** ipvsadm-style label of a service key: "TCP 192.0.2.100:80", "FWM 42 IPv6", "UDP [2001:db8::1]:53". */
export function serviceKeyString(k: IpvsServiceKey): string {
  if (k.fwmark !== undefined) return `FWM ${k.fwmark}${k.family === "inet6" ? " IPv6" : ""}`;
  const host = k.family === "inet6" ? `[${k.address}]` : k.address;
  return `${k.protocol.toUpperCase()} ${host}:${k.port}`;
}

/** "198.51.100.11:80" or "[2001:db8::11]:80". */
export function destKeyString(d: IpvsDestKey): string {
  return `${d.address.includes(":") ? `[${d.address}]` : d.address}:${d.port}`;
}

/** True when two service keys name the same service (addresses compared as given: use canonical text). */
export function sameServiceKey(a: IpvsServiceKey, b: IpvsServiceKey): boolean {
  if (a.family !== b.family) return false;
  if (a.fwmark !== undefined || b.fwmark !== undefined) return a.fwmark === b.fwmark;
  return a.protocol === b.protocol && a.address === b.address && a.port === b.port;
}
