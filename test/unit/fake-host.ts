// A fake Host for daemon unit tests: a virtual clock, in-memory links and addresses, and a
// shared segment that delivers VRRP packets between fake hosts the way the kernel would.
import type {
  Host, HostAddress, HostAddressSpec, HostBatchResult, HostLink, HostMacvlanSpec, HostNftResult, NetEvent, VrrpChannel,
  VrrpChannelOptions,
} from "../../src/daemon/host.ts";
import { describeRoute, describeRule, type RouteSpec, type RuleSpec } from "../../src/vrrp/routes.ts";
import type { ConfSysctl } from "../../src/vrrp/vmac.ts";
import { decodeIpv4Header } from "../../src/vrrp/codec.ts";
import { formatIPv4 } from "../../src/net/addr.ts";
import type { RxMeta } from "../../src/vrrp/types.ts";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** One virtual clock shared by every fake host of a test. */
export class FakeClock {
  now = 1000;
  #timers: Timer[] = [];
  #seq = 0;

  set(ms: number, fn: () => void): Timer {
    const t = { at: this.now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return t;
  }
  /** Runs every timer due up to now + ms, in time order (bounded). */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let i = 0; i < 1_000_000; i++) {
      const live = this.#timers.filter((t) => !t.cancelled);
      this.#timers = live;
      const next = live.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.now = Math.max(this.now, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.now = end;
  }
}

interface Rx {
  host: FakeHost;
  opts: VrrpChannelOptions;
  onPacket: (data: Uint8Array, meta: RxMeta) => void;
  closed: boolean;
}

/** An Ethernet segment: what one host sends, the others receive (optionally after a delay). */
export class FakeSegment {
  receivers: Rx[] = [];
  /** Every packet sent: [time, sender, dst, data]. */
  sent: Array<{ at: number; from: string; dst: string; data: Uint8Array }> = [];
  frames: Array<{ at: number; from: string; ifname: string; frame: Uint8Array }> = [];
  constructor(readonly clock: FakeClock, readonly delayMs = 0.1) {}

  deliver(from: FakeHost, opts: VrrpChannelOptions, data: Uint8Array, dst: string, src?: string): void {
    this.sent.push({ at: this.clock.now, from: from.name, dst, data });
    for (const r of this.receivers) {
      if (r.closed || r.host === from || r.opts.family !== opts.family || r.opts.protocol !== opts.protocol) continue;
      // the kernel delivers multicast to group sockets and unicast to the socket bound to dst
      const multicast = dst.startsWith("224.") || dst.toLowerCase().startsWith("ff");
      if (r.opts.unicast ? multicast || (r.opts.bindAddress !== undefined && r.opts.bindAddress !== dst) : !multicast) continue;
      if (!r.host.alive) continue;
      const meta: RxMeta = opts.family === "inet"
        ? { family: "inet", src: formatIPv4(decodeIpv4Header(data)!.src), dst, ifindex: 2, ttl: data[8]! }
        : { family: "inet6", src: src ?? "fe80::1", dst, ifindex: 2, ttl: 255 };
      this.clock.set(this.delayMs, () => r.onPacket(data, meta));
    }
  }
}

export class FakeHost implements Host {
  addressTable: HostAddress[] = [];
  log: string[] = [];
  /** Routes and rules present, by their describeRoute/describeRule text. */
  routes = new Set<string>();
  rules = new Set<string>();
  /** Sysctl values by "proto.ifname.key"; missing keys do not exist. */
  sysctls = new Map<string, number>();
  /** nft scripts applied, in order (async and blocking alike). */
  nftScripts: string[] = [];
  /** Whether nft "exists"; false makes every nft call report missing. */
  nftAvailable = true;
  /** Route/rule texts whose add fails (to test partial failures). */
  failing = new Set<string>();
  #sysctlJournal: Array<{ key: string; original: number }> = [];
  alive = true;
  #listeners: Array<(ev: NetEvent) => void> = [];
  #links: HostLink[];

  constructor(readonly name: string, readonly clock: FakeClock, readonly segment: FakeSegment, ownV4: string, mac = "02:00:00:00:00:01") {
    this.#links = [{ ifindex: 2, name: "eth0", up: true, noarp: false, mac }];
    this.addressTable.push({ ifindex: 2, family: "inet", address: ownV4, prefixlen: 24, secondary: false, scope: 0 });
    this.addressTable.push({ ifindex: 2, family: "inet6", address: `fe80::${ownV4.split(".").pop()}`, prefixlen: 64, secondary: false, scope: 253 });
  }

  now(): number {
    return this.clock.now;
  }
  /** Seconds since "boot": the virtual clock (starts at 1 s). */
  uptime(): number {
    return this.clock.now / 1000;
  }
  wallNow(): number {
    return 1_700_000_000_000 + this.clock.now;
  }
  setTimer(ms: number, fn: () => void): unknown {
    return this.clock.set(ms, () => this.alive && fn());
  }
  clearTimer(h: unknown): void {
    if (h) (h as Timer).cancelled = true;
  }
  links(): HostLink[] {
    return this.#links.map((l) => ({ ...l }));
  }
  addresses(): HostAddress[] {
    return this.addressTable.map((a) => ({ ...a }));
  }
  #find(s: HostAddressSpec): number {
    return this.addressTable.findIndex((a) => a.ifindex === s.ifindex && a.address === s.address && a.prefixlen === s.prefixlen);
  }
  addAddress(s: HostAddressSpec): void {
    if (this.#find(s) >= 0) throw Object.assign(new Error("File exists"), { code: "EEXIST" });
    this.addressTable.push({ ifindex: s.ifindex, family: s.family, address: s.address, prefixlen: s.prefixlen, secondary: true, scope: s.scope ?? 0, label: s.label });
    this.log.push(`add ${s.address}/${s.prefixlen}`);
  }
  deleteAddress(s: HostAddressSpec): void {
    const i = this.#find(s);
    if (i < 0) throw Object.assign(new Error("Cannot assign requested address"), { code: "EADDRNOTAVAIL" });
    this.addressTable.splice(i, 1);
    this.log.push(`del ${s.address}/${s.prefixlen}`);
  }
  openVrrp(opts: VrrpChannelOptions, onPacket: (data: Uint8Array, meta: RxMeta) => void): VrrpChannel {
    const rx: Rx = { host: this, opts, onPacket, closed: false };
    this.segment.receivers.push(rx);
    return {
      send: (packet, dst, src) => this.alive && this.segment.deliver(this, opts, packet, dst, src),
      close: () => void (rx.closed = true),
    };
  }
  sendFrame(ifname: string, frame: Uint8Array): void {
    if (this.alive) this.segment.frames.push({ at: this.clock.now, from: this.name, ifname, frame });
  }
  mac(ifname?: string): Uint8Array {
    const l = this.#links.find((x) => x.name === ifname) ?? this.#links[0];
    return Uint8Array.from(l.mac!.split(":").map((h) => parseInt(h, 16)));
  }
  onNetEvent(cb: (ev: NetEvent) => void): void {
    this.#listeners.push(cb);
  }
  /** Test control: another interface (up). */
  addLink(name: string): void {
    const ifindex = Math.max(...this.#links.map((l) => l.ifindex)) + 1;
    this.#links.push({ ifindex, name, up: true, noarp: false, mac: "02:00:00:00:01:0" + (ifindex % 10) });
  }
  /** Test control: deliver a net event to the listeners. */
  emit(ev: NetEvent): void {
    for (const l of this.#listeners) l(ev);
  }
  /** Test control: change a link's carrier and tell the listeners. */
  setLink(up: boolean): void {
    this.#links[0].up = up;
    for (const l of this.#listeners) l({ kind: "link", link: { ...this.#links[0] }, deleted: false });
  }
  applyRoutes(specs: readonly RouteSpec[], op: "add" | "delete"): HostBatchResult[] {
    return specs.map((r) => this.#batch(this.routes, `route ${describeRoute(r)}`, describeRoute(r), op));
  }
  applyRules(specs: readonly RuleSpec[], op: "add" | "delete"): HostBatchResult[] {
    return specs.map((r) => this.#batch(this.rules, `rule ${describeRule(r)}`, describeRule(r), op));
  }
  #batch(set: Set<string>, what: string, key: string, op: "add" | "delete"): HostBatchResult {
    this.log.push(`${op} ${what}`);
    if (op === "add" && this.failing.has(key)) return { outcome: "failed", error: "Network is unreachable" };
    if (op === "add") {
      if (set.has(key)) return { outcome: "present" };
      set.add(key);
    } else if (!set.delete(key)) return { outcome: "absent" };
    return { outcome: "done" };
  }
  createMacvlan(spec: HostMacvlanSpec): number {
    if (this.#links.some((l) => l.name === spec.name)) throw Object.assign(new Error("File exists"), { code: "EEXIST" });
    if (!this.#links.some((l) => l.name === spec.parent)) throw Object.assign(new Error("No such device"), { code: "ENODEV" });
    const ifindex = Math.max(...this.#links.map((l) => l.ifindex)) + 1;
    this.#links.push({ ifindex, name: spec.name, up: false, noarp: false, mac: spec.mac });
    // the kernel gives a new interface the "default" values
    for (const [k, v] of [...this.sysctls]) {
      const m = /^(ipv[46])\.default\.(.+)$/.exec(k);
      if (m) this.sysctls.set(`${m[1]}.${spec.name}.${m[2]}`, v);
    }
    this.log.push(`macvlan ${spec.name} on ${spec.parent} ${spec.mac}`);
    return ifindex;
  }
  deleteLink(name: string): void {
    const l = this.#links.find((x) => x.name === name);
    if (!l) return;
    this.#links = this.#links.filter((x) => x !== l);
    this.addressTable = this.addressTable.filter((a) => a.ifindex !== l.ifindex);
    this.log.push(`dellink ${name}`);
  }
  setLinkUp(name: string, up: boolean): void {
    const l = this.#links.find((x) => x.name === name);
    if (!l) throw Object.assign(new Error("No such device"), { code: "ENODEV" });
    l.up = up;
    this.log.push(`link ${name} ${up ? "up" : "down"}`);
  }
  setAddrGenModeNone(name: string): void {
    this.log.push(`addrgenmode ${name} none`);
  }
  readSysctl(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): number | null {
    return this.sysctls.get(sysctlKey(c)) ?? null;
  }
  setSysctl(c: ConfSysctl): boolean {
    const key = sysctlKey(c);
    const cur = this.sysctls.get(key);
    if (cur === undefined) return false;
    if (!this.#sysctlJournal.some((e) => e.key === key)) this.#sysctlJournal.push({ key, original: cur });
    this.sysctls.set(key, c.value);
    this.log.push(`sysctl ${key}=${c.value}`);
    return true;
  }
  restoreSysctls(): string[] {
    for (const e of this.#sysctlJournal.splice(0).reverse()) this.sysctls.set(e.key, e.original);
    this.log.push("sysctl restore");
    return [];
  }
  nft(script: string, what: string): Promise<HostNftResult> {
    return Promise.resolve(this.nftBlocking(script, what));
  }
  nftBlocking(script: string, what: string): HostNftResult {
    if (!this.nftAvailable) return { ok: false, missing: true, error: "nft not found" };
    this.nftScripts.push(script);
    this.log.push(`nft ${what}`);
    return { ok: true };
  }
  has(address: string): boolean {
    return this.addressTable.some((a) => a.address === address);
  }
  close(): void {}
}

/** The fake's sysctl key: "ipv4.eth0.arp_ignore", or "ipv4.igmp_link_local_mcast_reports" for a protocol-wide one. */
function sysctlKey(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): string {
  return c.ifname === undefined ? `${c.proto}.${c.key}` : `${c.proto}.${c.ifname}.${c.key}`;
}
