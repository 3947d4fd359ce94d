/**
 * A Host that changes nothing: it answers reads from a snapshot of the kernel's state and
 * records every change the daemon asks for as a planned change, keeping its own copy of the
 * state up to date so later steps see earlier ones (an address added, a VMAC created). No
 * raw sockets: VRRP channels are inert and timers never fire, so the plan is what `start`
 * does before the first advert or timeout.
 */
import { describeRoute, describeRule, kernelRouteKey, type RouteSpec, ruleIdentity, type RuleSpec } from "../vrrp/routes.ts";
import type { ConfSysctl } from "../vrrp/vmac.ts";
import type {
  Host, HostAddress, HostAddressSpec, HostBatchResult, HostLink, HostMacvlanSpec, HostNftResult, VrrpChannel,
} from "./host.ts";

/** The kernel state the plan starts from (read-only). */
export interface HostSnapshot {
  links: HostLink[];
  addresses: HostAddress[];
  /** routeKey() of every route present. */
  routes: string[];
  /** ruleIdentity() of every rule present. */
  rules: string[];
  readSysctl(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): number | null;
}

export type PlannedKind = "address" | "route" | "rule" | "link" | "sysctl" | "nft" | "ipvs";

export interface PlannedChange {
  kind: PlannedKind;
  op: "add" | "delete" | "set" | "apply";
  text: string;
}


function errno(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** "ipv4.conf.eth0.arp_ignore", or "ipv4.igmp_link_local_mcast_reports" for a protocol-wide key. */
function sysctlName(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): string {
  return c.ifname === undefined ? `${c.proto}.${c.key}` : `${c.proto}.conf.${c.ifname}.${c.key}`;
}

export class PlanningHost implements Host {
  readonly changes: PlannedChange[] = [];
  #links: HostLink[];
  #addresses: HostAddress[];
  #routes: Set<string>;
  #rules: Set<string>;
  #planned = new Set<string>();
  #sysctls = new Map<string, number>();
  #timer = 0;
  readonly #snap: HostSnapshot;

  constructor(snap: HostSnapshot) {
    this.#snap = snap;
    this.#links = snap.links.map((l) => ({ ...l }));
    this.#addresses = snap.addresses.map((a) => ({ ...a }));
    this.#routes = new Set(snap.routes);
    this.#rules = new Set(snap.rules);
  }

  #plan(kind: PlannedKind, op: PlannedChange["op"], text: string): void {
    this.changes.push({ kind, op, text });
  }

  #ifname(ifindex: number): string {
    return this.#links.find((l) => l.ifindex === ifindex)?.name ?? `ifindex ${ifindex}`;
  }

  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  uptime(): number {
    return Number.POSITIVE_INFINITY; // a dry run plans as if any boot delay were over
  }
  setTimer(): unknown {
    return ++this.#timer; // never fires: the plan stops at what start does at once
  }
  clearTimer(): void {}
  links(): HostLink[] {
    return this.#links.map((l) => ({ ...l }));
  }
  addresses(): HostAddress[] {
    return this.#addresses.map((a) => ({ ...a }));
  }
  addAddress(spec: HostAddressSpec): void {
    const same = (a: HostAddress) => a.ifindex === spec.ifindex && a.address === spec.address && a.prefixlen === spec.prefixlen;
    if (this.#addresses.some(same)) throw errno("EEXIST", "File exists");
    this.#addresses.push({ ifindex: spec.ifindex, family: spec.family, address: spec.address, prefixlen: spec.prefixlen, secondary: false, scope: spec.scope ?? 0 });
    this.#plan("address", "add", `${spec.address}/${spec.prefixlen} dev ${this.#ifname(spec.ifindex)}`);
  }
  deleteAddress(spec: HostAddressSpec): void {
    const i = this.#addresses.findIndex((a) => a.ifindex === spec.ifindex && a.address === spec.address && a.prefixlen === spec.prefixlen);
    if (i < 0) throw errno("EADDRNOTAVAIL", "Cannot assign requested address");
    this.#addresses.splice(i, 1);
    this.#plan("address", "delete", `${spec.address}/${spec.prefixlen} dev ${this.#ifname(spec.ifindex)}`);
  }
  openVrrp(): VrrpChannel {
    return { send() {}, close() {} };
  }
  sendFrame(): void {}
  mac(ifname: string): Uint8Array {
    const text = this.#links.find((l) => l.name === ifname)?.mac ?? "00:00:00:00:00:00";
    return Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
  }
  onNetEvent(): void {}
  applyRoutes(specs: readonly RouteSpec[], op: "add" | "delete"): HostBatchResult[] {
    return specs.map((s) => this.#batch("route", this.#routes, kernelRouteKey(s), op, describeRoute(s)));
  }
  applyRules(specs: readonly RuleSpec[], op: "add" | "delete"): HostBatchResult[] {
    return specs.map((s) => this.#batch("rule", this.#rules, ruleIdentity(s), op, describeRule(s)));
  }
  #batch(kind: "route" | "rule", present: Set<string>, key: string, op: "add" | "delete", text: string): HostBatchResult {
    if (op === "add") {
      if (present.has(key)) return { outcome: "present" };
      present.add(key);
    } else {
      if (!present.delete(key)) return { outcome: "absent" };
    }
    this.#plan(kind, op, text);
    return { outcome: "done" };
  }
  createMacvlan(spec: HostMacvlanSpec): number {
    const ifindex = Math.max(0, ...this.#links.map((l) => l.ifindex)) + 1;
    this.#links.push({ ifindex, name: spec.name, up: false, noarp: false, mac: spec.mac });
    this.#planned.add(spec.name);
    this.#plan("link", "add", `macvlan ${spec.name} link ${spec.parent} address ${spec.mac} mode private`);
    return ifindex;
  }
  deleteLink(name: string): void {
    const i = this.#links.findIndex((l) => l.name === name);
    if (i < 0) return;
    this.#links.splice(i, 1);
    this.#plan("link", "delete", name);
  }
  setLinkUp(name: string, up: boolean): void {
    const l = this.#links.find((x) => x.name === name);
    if (l && l.up === up && !this.#planned.has(name)) return;
    if (l) l.up = up;
    this.#plan("link", "set", `${name} ${up ? "up" : "down"}`);
  }
  setAddrGenModeNone(name: string): void {
    this.#plan("link", "set", `${name} addrgenmode none`);
  }
  readSysctl(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): number | null {
    const k = sysctlName(c);
    if (this.#sysctls.has(k)) return this.#sysctls.get(k)!;
    // a planned link has the defaults the kernel would give it
    return this.#snap.readSysctl(c.ifname !== undefined && this.#planned.has(c.ifname) ? { ...c, ifname: "default" } : c);
  }
  setSysctl(c: ConfSysctl): boolean {
    const cur = this.readSysctl(c);
    if (cur === null) return false;
    if (cur === c.value) return true;
    this.#sysctls.set(sysctlName(c), c.value);
    this.#plan("sysctl", "set", `net.${sysctlName(c)} ${cur} -> ${c.value}`);
    return true;
  }
  restoreSysctls(): string[] {
    return [];
  }
  nft(script: string, what: string): Promise<HostNftResult> {
    return Promise.resolve(this.nftBlocking(script, what));
  }
  nftBlocking(script: string, what: string): HostNftResult {
    this.#plan("nft", "apply", `${what}:\n${script.trimEnd().split("\n").map((l) => `    ${l}`).join("\n")}`);
    return { ok: true };
  }
  close(): void {}
}
