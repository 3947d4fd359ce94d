/**
 * An IpvsApi that changes nothing, for `vipd run --dry-run`: it starts from a snapshot of the
 * kernel's table, answers reads from its own copy, and records every write as a planned
 * change while applying it to that copy, so the LVS manager plans against the real table
 * exactly as it would program it (only the differences, races absorbed the same way).
 */
import { canonicalIp } from "../net/addr.ts";
import {
  type IpvsApi, type IpvsDaemonState, type IpvsDestination, type IpvsDestinationEntry, type IpvsDestKey, type IpvsInfo,
  type IpvsService, type IpvsServiceEntry, type IpvsServiceKey, type IpvsSyncDaemon, type IpvsTimeouts,
  destKeyString, serviceKeyString,
} from "./ipvs-types.ts";
import { serviceId } from "./desired.ts";

/** The kernel's IPVS table as read once (services with their destinations). */
export interface IpvsSnapshot {
  info: IpvsInfo;
  services: Array<{ service: IpvsServiceEntry; dests: IpvsDestinationEntry[] }>;
  timeouts: IpvsTimeouts;
  daemons: IpvsSyncDaemon[];
}

/** Reads everything the manager may look at from a live IpvsApi (read-only calls only). */
export function snapshotIpvs(api: IpvsApi): IpvsSnapshot {
  const services = api.services().map((service) => ({ service, dests: api.destinations(service) }));
  return { info: api.info(), services, timeouts: api.timeouts(), daemons: api.daemons() };
}

function errno(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const destKey = (d: IpvsDestKey): string => destKeyString({ address: canonicalIp(d.address) ?? d.address, port: d.port });

/** A planned IPVS change, worded like `ipvsadm` thinks of it. */
export interface PlannedIpvsChange {
  op: "add" | "edit" | "delete" | "flush" | "set" | "start" | "stop";
  text: string;
}

export class PlanningIpvs implements IpvsApi {
  readonly changes: PlannedIpvsChange[] = [];
  #services = new Map<string, { service: IpvsServiceEntry; dests: Map<string, IpvsDestinationEntry> }>();
  #timeouts: IpvsTimeouts;
  #daemons: IpvsSyncDaemon[];
  readonly #info: IpvsInfo;

  constructor(snap: IpvsSnapshot) {
    this.#info = snap.info;
    for (const s of snap.services) {
      this.#services.set(serviceId(s.service), { service: { ...s.service }, dests: new Map(s.dests.map((d) => [destKey(d), { ...d }])) });
    }
    this.#timeouts = { ...snap.timeouts };
    this.#daemons = snap.daemons.map((d) => ({ ...d }));
  }

  #find(key: IpvsServiceKey) {
    return this.#services.get(serviceId(key));
  }

  #record(op: PlannedIpvsChange["op"], text: string): void {
    this.changes.push({ op, text });
  }

  info(): IpvsInfo {
    return { ...this.#info };
  }

  services(): IpvsServiceEntry[] {
    return [...this.#services.values()].map((s) => ({ ...s.service }));
  }

  getService(key: IpvsServiceKey): IpvsServiceEntry | undefined {
    const s = this.#find(key);
    return s && { ...s.service };
  }

  addService(s: IpvsService): void {
    if (this.#find(s)) throw errno("EEXIST", "File exists");
    this.#services.set(serviceId(s), { service: { ...s }, dests: new Map() });
    this.#record("add", `service ${describeService(s)}`);
  }

  editService(s: IpvsService): void {
    const cur = this.#find(s);
    if (!cur) throw errno("ESRCH", "No such process");
    cur.service = { ...s, ...(cur.service.stats ? { stats: cur.service.stats } : {}) } as IpvsServiceEntry;
    this.#record("edit", `service ${describeService(s)}`);
  }

  deleteService(key: IpvsServiceKey): void {
    if (!this.#services.delete(serviceId(key))) throw errno("ESRCH", "No such process");
    this.#record("delete", `service ${serviceKeyString(key)}`);
  }

  destinations(key: IpvsServiceKey): IpvsDestinationEntry[] {
    const s = this.#find(key);
    if (!s) throw errno("ESRCH", "No such process");
    return [...s.dests.values()].map((d) => ({ ...d }));
  }

  addDestination(key: IpvsServiceKey, d: IpvsDestination): void {
    const s = this.#find(key);
    if (!s) throw errno("ESRCH", "No such process");
    if (s.dests.has(destKey(d))) throw errno("EEXIST", "File exists");
    s.dests.set(destKey(d), { ...d, activeConns: 0, inactConns: 0, persistConns: 0 });
    this.#record("add", `real-server ${describeDest(key, d)}`);
  }

  editDestination(key: IpvsServiceKey, d: IpvsDestination): void {
    const s = this.#find(key);
    const cur = s?.dests.get(destKey(d));
    if (!s || !cur) throw errno("ENOENT", "No such file or directory");
    s.dests.set(destKey(d), { ...cur, ...d });
    this.#record("edit", `real-server ${describeDest(key, d)}`);
  }

  deleteDestination(key: IpvsServiceKey, d: IpvsDestKey): void {
    const s = this.#find(key);
    if (!s) throw errno("ESRCH", "No such process");
    if (!s.dests.delete(destKey(d))) throw errno("ENOENT", "No such file or directory");
    this.#record("delete", `real-server ${serviceKeyString(key)} -> ${destKeyString(d)}`);
  }

  flush(): void {
    this.#services.clear();
    this.#record("flush", "the whole IPVS table (lvs_flush)");
  }

  zero(): void {}

  timeouts(): IpvsTimeouts {
    return { ...this.#timeouts };
  }

  setTimeouts(t: Partial<IpvsTimeouts>): void {
    const next = { ...this.#timeouts };
    for (const [k, v] of Object.entries(t) as Array<[keyof IpvsTimeouts, number | undefined]>) if (v !== undefined && v !== 0) next[k] = v;
    const changed = (Object.keys(next) as Array<keyof IpvsTimeouts>).filter((k) => next[k] !== this.#timeouts[k]);
    this.#timeouts = next;
    if (changed.length) this.#record("set", `timeouts ${changed.map((k) => `${k} ${next[k]}`).join(" ")}`);
  }

  daemons(): IpvsSyncDaemon[] {
    return this.#daemons.map((d) => ({ ...d }));
  }

  startDaemon(d: IpvsSyncDaemon): void {
    if (this.#daemons.some((x) => x.state === d.state)) throw errno("EEXIST", "File exists");
    this.#daemons.push({ ...d });
    this.#record("start", `sync daemon ${d.state} on ${d.mcastIfn} syncid ${d.syncId}`);
  }

  stopDaemon(state: IpvsDaemonState): void {
    const before = this.#daemons.length;
    this.#daemons = this.#daemons.filter((x) => x.state !== state);
    if (this.#daemons.length === before) throw errno("ESRCH", "No such process");
    this.#record("stop", `sync daemon ${state}`);
  }

  close(): void {}
}

function describeService(s: IpvsService): string {
  const persist = s.flags & 0x1 ? ` persistent ${s.timeout}` : "";
  return `${serviceKeyString(s)} scheduler ${s.scheduler}${persist}`;
}

function describeDest(key: IpvsServiceKey, d: IpvsDestination): string {
  return `${serviceKeyString(key)} -> ${destKeyString(d)} ${d.fwdMethod} weight ${d.weight}`;
}
