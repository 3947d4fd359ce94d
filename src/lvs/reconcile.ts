/**
 * Desired IPVS services and destinations versus what the kernel reports: the minimal ordered
 * list of operations that makes the kernel match, and the operations that undo vipd's entries
 * at stop. Pure planning; `observe` and `applyOps` are the only functions that call an IpvsApi.
 *
 * Ownership: a service vipd's config names is vipd's (its destinations are made to match the
 * config exactly, so a stale real server left by a crash or an operator does not linger).
 * Services vipd never configured are never touched, except by an explicit flush
 * (lvs_flush at start, lvs_flush_on_stop).
 */
import { canonicalIp } from "../net/addr.ts";
import { serviceId } from "./desired.ts";
import type { DesiredService } from "./lifecycle.ts";
import {
  IP_VS_SVC_F_HASHED, type IpvsApi, type IpvsDestination, type IpvsDestinationEntry, type IpvsDestKey, type IpvsErrorLike,
  type IpvsService, type IpvsServiceEntry, type IpvsServiceKey, type IpvsTunnel, destKeyString, serviceKeyString,
} from "./ipvs-types.ts";

/** One change to the kernel's IPVS table. */
export type IpvsOp =
  | { op: "flush" }
  | { op: "addService"; service: IpvsService }
  | { op: "editService"; service: IpvsService }
  | { op: "deleteService"; key: IpvsServiceKey }
  | { op: "addDest"; key: IpvsServiceKey; dest: IpvsDestination }
  | { op: "editDest"; key: IpvsServiceKey; dest: IpvsDestination }
  | { op: "deleteDest"; key: IpvsServiceKey; dest: IpvsDestKey };

/** A service as dumped, with its destinations (undefined when they were not read). */
export interface ObservedService {
  service: IpvsServiceEntry;
  dests?: IpvsDestinationEntry[];
}

/** Just the key fields of a service (what delete and destination requests need). */
export function keyOf(s: IpvsServiceKey): IpvsServiceKey {
  return s.fwmark !== undefined
    ? { family: s.family, fwmark: s.fwmark }
    : { family: s.family, protocol: s.protocol, address: s.address, port: s.port };
}

/** "198.51.100.1:80" with the address in canonical text. */
export function destId(d: IpvsDestKey): string {
  return destKeyString({ address: canonicalIp(d.address) ?? d.address, port: d.port });
}

/** Reads the table: every service, and the destinations of those whose serviceId is in `withDests` (all when omitted). */
export function observe(api: IpvsApi, withDests?: ReadonlySet<string>): ObservedService[] {
  return api.services().map((service) => {
    if (withDests && !withDests.has(serviceId(service))) return { service };
    let dests: IpvsDestinationEntry[];
    try {
      dests = api.destinations(keyOf(service));
    } catch (e) {
      if ((e as IpvsErrorLike).code === "ESRCH") return { service, dests: [] };
      throw e;
    }
    return { service, dests };
  });
}

/** Whether the settable parameters of two services agree (HASHED is the kernel's own bit). */
export function sameServiceParams(a: IpvsService, b: IpvsService): boolean {
  return (
    a.scheduler === b.scheduler &&
    (a.flags & ~IP_VS_SVC_F_HASHED) === (b.flags & ~IP_VS_SVC_F_HASHED) &&
    a.timeout === b.timeout &&
    a.netmask === b.netmask &&
    (a.peName ?? "") === (b.peName ?? "")
  );
}

const plainIpip: IpvsTunnel = { type: "ipip", port: 0, csum: "nocsum" };

function sameTunnel(a: IpvsTunnel | undefined, b: IpvsTunnel | undefined): boolean {
  const x = a ?? plainIpip;
  const y = b ?? plainIpip;
  return x.type === y.type && x.port === y.port && x.csum === y.csum;
}

/** Whether a destination's settable parameters agree (the tunnel only matters for TUN). */
export function sameDestParams(a: IpvsDestination, b: IpvsDestination): boolean {
  return (
    a.fwdMethod === b.fwdMethod &&
    a.weight === b.weight &&
    a.uThreshold === b.uThreshold &&
    a.lThreshold === b.lThreshold &&
    (a.fwdMethod !== "TUN" || sameTunnel(a.tunnel, b.tunnel))
  );
}

/**
 * The operations that turn `observed` into `desired`: services added or edited, then
 * destinations added and edited before stale ones are deleted (a pool never empties on the
 * way), then services vipd owned and no longer wants deleted. `owned` holds the serviceIds
 * vipd programmed before (previous config), so a service dropped by a reload goes away.
 * Observed services without destination lists get theirs treated as unknown (nothing deleted).
 */
export function planReconcile(desired: readonly DesiredService[], observed: readonly ObservedService[], owned: ReadonlySet<string> = new Set()): IpvsOp[] {
  const seen = new Map<string, ObservedService>();
  for (const o of observed) seen.set(serviceId(o.service), o);
  const svcOps: IpvsOp[] = [];
  const addOps: IpvsOp[] = [];
  const editOps: IpvsOp[] = [];
  const delOps: IpvsOp[] = [];
  const wanted = new Set<string>();
  for (const d of desired) {
    const id = serviceId(d.service);
    wanted.add(id);
    const key = keyOf(d.service);
    const o = seen.get(id);
    if (!o) {
      svcOps.push({ op: "addService", service: d.service });
      for (const dest of d.dests) addOps.push({ op: "addDest", key, dest });
      continue;
    }
    if (!sameServiceParams(d.service, o.service)) svcOps.push({ op: "editService", service: d.service });
    const have = new Map<string, IpvsDestinationEntry>();
    for (const x of o.dests ?? []) have.set(destId(x), x);
    const want = new Set<string>();
    for (const dest of d.dests) {
      const did = destId(dest);
      want.add(did);
      const cur = have.get(did);
      if (!cur) addOps.push({ op: "addDest", key, dest });
      else if (cur.family !== dest.family) {
        delOps.push({ op: "deleteDest", key, dest: { address: cur.address, port: cur.port } });
        addOps.push({ op: "addDest", key, dest });
      } else if (!sameDestParams(dest, cur)) editOps.push({ op: "editDest", key, dest });
    }
    for (const [did, cur] of have) if (!want.has(did)) delOps.push({ op: "deleteDest", key, dest: { address: cur.address, port: cur.port } });
  }
  const svcDel: IpvsOp[] = [];
  for (const [id, o] of seen) if (!wanted.has(id) && owned.has(id)) svcDel.push({ op: "deleteService", key: keyOf(o.service) });
  return [...svcOps, ...addOps, ...editOps, ...delOps, ...svcDel];
}

/**
 * The operations that undo vipd at stop: "full" flushes everything; "vs" deletes each of
 * vipd's services whole; "none" (keepalived's default) removes each of vipd's real servers,
 * then the service. Services vipd does not own are left alone.
 */
export function planStop(owned: ReadonlySet<string>, observed: readonly ObservedService[], mode: "none" | "full" | "vs"): IpvsOp[] {
  if (mode === "full") return [{ op: "flush" }];
  const out: IpvsOp[] = [];
  for (const o of observed) {
    if (!owned.has(serviceId(o.service))) continue;
    const key = keyOf(o.service);
    if (mode === "none") for (const d of o.dests ?? []) out.push({ op: "deleteDest", key, dest: { address: d.address, port: d.port } });
    out.push({ op: "deleteService", key });
  }
  return out;
}

/** "add service TCP 192.0.2.1:80", "edit dest TCP 192.0.2.1:80 -> 198.51.100.1:80 weight 0". */
export function describeOp(op: IpvsOp): string {
  switch (op.op) {
    case "flush":
      return "flush";
    case "addService":
    case "editService":
      return `${op.op === "addService" ? "add" : "edit"} service ${serviceKeyString(op.service)} ${op.service.scheduler}`;
    case "deleteService":
      return `delete service ${serviceKeyString(op.key)}`;
    case "addDest":
    case "editDest":
      return `${op.op === "addDest" ? "add" : "edit"} dest ${serviceKeyString(op.key)} -> ${destKeyString(op.dest)} ${op.dest.fwdMethod} weight ${op.dest.weight}`;
    case "deleteDest":
      return `delete dest ${serviceKeyString(op.key)} -> ${destKeyString(op.dest)}`;
  }
}

/** The result of applying operations: how many went through and which failed (with the kernel's error). */
export interface ApplyResult {
  applied: number;
  failed: Array<{ op: IpvsOp; error: string }>;
}

const codeOf = (e: unknown): string => (e as IpvsErrorLike)?.code ?? "";

/**
 * Runs the operations in order. Races with the kernel are absorbed: an add that finds the
 * entry (EEXIST) becomes an edit, an edit that misses it becomes an add, a delete of
 * something already gone counts as done. Other errors are collected, never thrown.
 */
export function applyOps(api: IpvsApi, ops: readonly IpvsOp[]): ApplyResult {
  const res: ApplyResult = { applied: 0, failed: [] };
  for (const op of ops) {
    try {
      runOp(api, op);
      res.applied++;
    } catch (e) {
      res.failed.push({ op, error: (e as Error)?.message ?? String(e) });
    }
  }
  return res;
}

function runOp(api: IpvsApi, op: IpvsOp): void {
  const retry = (first: () => void, code: string[], second: () => void) => {
    try {
      first();
    } catch (e) {
      if (!code.includes(codeOf(e))) throw e;
      second();
    }
  };
  const ignore = (f: () => void, codes: string[]) => {
    try {
      f();
    } catch (e) {
      if (!codes.includes(codeOf(e))) throw e;
    }
  };
  switch (op.op) {
    case "flush":
      return api.flush();
    case "addService":
      return retry(() => api.addService(op.service), ["EEXIST"], () => api.editService(op.service));
    case "editService":
      return retry(() => api.editService(op.service), ["ESRCH"], () => api.addService(op.service));
    case "deleteService":
      return ignore(() => api.deleteService(op.key), ["ESRCH"]);
    case "addDest":
      return retry(() => api.addDestination(op.key, op.dest), ["EEXIST"], () => api.editDestination(op.key, op.dest));
    case "editDest":
      return retry(() => api.editDestination(op.key, op.dest), ["ENOENT"], () => api.addDestination(op.key, op.dest));
    case "deleteDest":
      return ignore(() => api.deleteDestination(op.key, op.dest), ["ENOENT", "ESRCH"]);
  }
}
