/**
 * The BFD runtime (src/daemon/bfd-runtime.ts) with a fake socket layer, against a pure peer
 * session: handshake to Up, events to the VRRP and checker sides (and the `vrrp` / `checker`
 * restrictions), demultiplexing and discard counters, and BFD_CHECK following the session
 * (src/check/bfd.ts) into checker reports.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { BfdCheckFollower, bfdCheckState } from "../../src/check/bfd.ts";
import type { CheckReport } from "../../src/check/runner.ts";
import { BfdState, decodeBfd, encodeBfd } from "../../src/bfd/codec.ts";
import { BfdSession } from "../../src/bfd/session.ts";
import type { RealServerModel } from "../../src/config/model.ts";
import type { Doc } from "../../src/config/schema/kinds.ts";
import { BfdRuntime, type BfdNet, type BfdPacketMeta } from "../../src/daemon/bfd-runtime.ts";
import { bfdInstances } from "../../src/bfd/config.ts";
import { loadConfigText } from "../../src/config/load.ts";

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

interface Sent { data: Uint8Array; dst: string; port: number; ttl: number; source?: string }

function fakeNet(): BfdNet & { sent: Sent[]; ports: number[] } {
  const sent: Sent[] = [];
  const ports: number[] = [];
  return {
    sent, ports,
    listen(port) {
      ports.push(port);
      return { close() {} };
    },
    sender(_family, source, ttl) {
      return { send: (data, dst, port) => void sent.push({ data, dst, port, ttl, ...(source ? { source } : {}) }), close() {} };
    },
  };
}

const meta = (src: string, ttl = 255): BfdPacketMeta => ({ src, dst: "192.0.2.1", ttl, truncated: false });
const runtimes: BfdRuntime[] = [];
afterEach(() => {
  for (const r of runtimes.splice(0)) r.stop();
});

function setup(block: Doc = {}) {
  const net = fakeNet();
  const rt = new BfdRuntime({ B1: { neighbor_ip: "192.0.2.2", source_ip: "192.0.2.1", min_rx: 100, min_tx: 100, multiplier: 3, ...block } }, { net, log: quiet });
  runtimes.push(rt);
  const vrrp: Array<[string, boolean]> = [];
  const checker: Array<[string, boolean]> = [];
  rt.onVrrpEvent((n, up) => vrrp.push([n, up]));
  rt.onCheckerEvent((n, up) => checker.push([n, up]));
  let d = 500;
  const peer = new BfdSession({ name: "peer", minRxUs: 100_000, minTxUs: 100_000, idleTxUs: 1_000_000, detectMult: 3, passive: true, ttl: 255, maxHops: 0 }, { random: () => 0.5, newDiscriminator: () => ++d });
  /** Delivers everything the runtime sent to the peer, and the peer's answers back, until quiet. */
  const exchange = (rounds = 6) => {
    let seen = 0;
    for (let i = 0; i < rounds; i++) {
      const fresh = net.sent.slice(seen);
      seen = net.sent.length;
      for (const s of fresh) {
        const r = decodeBfd(s.data);
        if (!r.ok) throw new Error(r.error);
        const o = peer.receive(r.packet, 255, performance.now());
        if (typeof o === "string") throw new Error(o);
        for (const b of o.send) rt.handlePacket(b, meta("192.0.2.2"), false);
      }
      // the peer also speaks on its own (its first periodic packet), with Poll so that the
      // runtime answers at once (its own periodic packets run on real timers)
      if (i === 0 && peer.txAt !== undefined) {
        peer.poll = true;
        for (const b of peer.advance(peer.txAt).send) rt.handlePacket(b, meta("192.0.2.2"), false);
      }
    }
  };
  return { net, rt, vrrp, checker, peer, exchange };
}

describe("BFD runtime", () => {
  test("starts Down (reported), reaches Up with the peer, and tells both sides", () => {
    const { net, rt, vrrp, checker, exchange, peer } = setup();
    rt.start();
    expect(net.ports).toEqual([3784]);
    expect(rt.state("B1")).toBe(false);
    expect(net.sent[0]).toMatchObject({ dst: "192.0.2.2", port: 3784, ttl: 255, source: "192.0.2.1" });
    exchange();
    expect(peer.sessionState).toBe(BfdState.Up);
    expect(rt.state("B1")).toBe(true);
    expect(vrrp).toEqual([["B1", true]]);
    expect(checker).toEqual([["B1", true]]);
    const st = rt.status()[0]!;
    expect(st).toMatchObject({ name: "B1", state: "Up", remoteState: "Init", // the peer has not spoken since it went Up
      neighbor: "192.0.2.2", remoteDiscriminator: peer.localDiscr });
    // the peer says Down: Down (diag 3) and a Down event
    peer.sessionState = BfdState.Down;
    rt.handlePacket(encodeBfd({ ...peer.buildPacket(), state: BfdState.Down, diag: 1 }), meta("192.0.2.2"), false);
    expect(rt.state("B1")).toBe(false);
    expect(vrrp.at(-1)).toEqual(["B1", false]);
    expect(rt.status()[0]!.localDiag).toBe("Neighbor Signaled Session Down");
  });

  test("`vrrp` only: the checker side hears nothing; `checker` only: VRRP hears nothing", () => {
    const a = setup({ vrrp: true });
    a.rt.start();
    a.exchange();
    expect(a.vrrp).toEqual([["B1", true]]);
    expect(a.checker).toEqual([]);
    expect(a.rt.delivers("B1", "checker")).toBe(false);
    const b = setup({ checker: true });
    b.rt.start();
    b.exchange();
    expect(b.vrrp).toEqual([]);
    expect(b.checker).toEqual([["B1", true]]);
  });

  test("discards are counted, never thrown: malformed, unknown session, wrong TTL, truncated", () => {
    const { rt } = setup();
    rt.start();
    rt.handlePacket(new Uint8Array(10), meta("192.0.2.2"), false);
    const valid = (over: object) => encodeBfd({
      version: 1, diag: 0, state: BfdState.Down, poll: false, final: false, controlPlaneIndependent: false, authPresent: false,
      demand: false, multipoint: false, detectMult: 3, length: 24, myDiscriminator: 9, yourDiscriminator: 0,
      desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 100_000, requiredMinEchoRxInterval: 0, ...over,
    });
    rt.handlePacket(valid({ yourDiscriminator: 12345 }), meta("192.0.2.2"), false);
    rt.handlePacket(valid({}), meta("192.0.2.9"), false); // no session for that neighbor
    rt.handlePacket(valid({}), meta("192.0.2.2"), true); // multihop port, single-hop session
    rt.handlePacket(valid({}), meta("192.0.2.2", 254), false);
    rt.handlePacket(valid({}), { ...meta("192.0.2.2"), truncated: true }, false);
    expect(rt.stats().discarded).toEqual({ "too-short": 1, "no-session": 3, ttl: 1, truncated: 1 });
    expect(rt.status()[0]!.state).toBe("Down");
    rt.handlePacket(valid({}), meta("192.0.2.2"), false);
    expect(rt.status()[0]!.state).toBe("Init");
  });

  test("a bfd_instance without neighbor_ip is not started; IPv6 gets hop limit 64; multihop listens on 4784", () => {
    const net = fakeNet();
    const rt = new BfdRuntime({ X: { min_rx: 100 }, V6: { neighbor_ip: "2001:db8::2" }, M: { neighbor_ip: "198.51.100.1", multihop: true } }, { net, log: quiet });
    runtimes.push(rt);
    rt.start();
    expect(rt.state("X")).toBeUndefined();
    expect(net.ports.sort()).toEqual([3784, 4784]);
    expect(net.sent.find((s) => s.dst === "2001:db8::2")).toMatchObject({ port: 3784, ttl: 64 });
    expect(net.sent.find((s) => s.dst === "198.51.100.1")).toMatchObject({ port: 4784, ttl: 255 });
  });
});

describe("BFD_CHECK follows the session", () => {
  const rs = (name: string): RealServerModel => ({ ip: "192.0.2.10", port: 80, weight: 1, doc: {}, checkers: [{ type: "TCP_CHECK", doc: {} }, { type: "BFD_CHECK", doc: { name } }] });

  test("initial state from the session; Up/Down events become checker reports for that checker only", async () => {
    const { rt, exchange, peer } = setup();
    rt.start();
    const source = { state: (n: string) => (rt.delivers(n, "checker") ? rt.state(n) : undefined) };
    expect(bfdCheckState("B1", source)).toMatchObject({ up: false });
    expect(bfdCheckState("NOPE", source)).toMatchObject({ up: true, detail: "BFD_CHECK - BFD NOPE not configured - skipping checker" });
    const reports: CheckReport[] = [];
    const follower = new BfdCheckFollower(source, (r) => reports.push(r));
    rt.onCheckerEvent((n, up) => follower.event(n, up));
    follower.add("vs1/rs1", rs("B1"), "[192.0.2.10]:tcp:80");
    follower.add("vs1/rs2", rs("OTHER"), "[192.0.2.11]:tcp:80");
    expect(follower.stateOf("vs1/rs1", 1)).toBe(false);
    exchange();
    expect(reports).toEqual([{ rsRef: "vs1/rs1", checkerIndex: 1, type: "BFD_CHECK", up: true, ok: true, transition: "up", first: false, detail: "B1", latencyMs: 0, retrying: false }]);
    rt.handlePacket(encodeBfd({ ...peer.buildPacket(), state: BfdState.Down }), meta("192.0.2.2"), false);
    expect(reports.length).toBe(2);
    expect(reports[1]).toMatchObject({ rsRef: "vs1/rs1", checkerIndex: 1, up: false, transition: "down" });
    expect(follower.stateOf("vs1/rs1", 1)).toBe(false);
    follower.remove("vs1/rs1");
    follower.event("B1", true);
    expect(reports.length).toBe(2);
  });

  test("a `vrrp`-only instance does not feed BFD_CHECK (keepalived skips the checker)", () => {
    const { rt } = setup({ vrrp: true });
    rt.start();
    const source = { state: (n: string) => (rt.delivers(n, "checker") ? rt.state(n) : undefined) };
    const reports: CheckReport[] = [];
    const follower = new BfdCheckFollower(source, (r) => reports.push(r));
    follower.add("vs1/rs1", rs("B1"), "x");
    follower.event("B1", false);
    expect(follower.stateOf("vs1/rs1", 1)).toBeUndefined();
    expect(reports).toEqual([]);
  });
});

describe("BFD runtime reload", () => {
  test("an unchanged session keeps its state and discriminator; a changed one restarts; a removed one stops", () => {
    const { rt, exchange } = setup();
    rt.start();
    exchange();
    expect(rt.state("B1")).toBe(true);
    const before = rt.status()[0]!.localDiscriminator;
    rt.reload({ B1: { neighbor_ip: "192.0.2.2", source_ip: "192.0.2.1", min_rx: 100, min_tx: 100, multiplier: 3 }, B2: { neighbor_ip: "192.0.2.3" } });
    expect(rt.state("B1")).toBe(true);
    expect(rt.status().find((s) => s.name === "B1")!.localDiscriminator).toBe(before);
    expect(rt.state("B2")).toBe(false);
    // new timers, same peer: state kept, a Poll sequence announces them (as keepalived)
    rt.reload({ B1: { neighbor_ip: "192.0.2.2", source_ip: "192.0.2.1", min_rx: 200, min_tx: 100, multiplier: 3 } });
    expect(rt.state("B1")).toBe(true);
    expect(rt.state("B2")).toBeUndefined();
    expect(rt.status().map((s) => s.name)).toEqual(["B1"]);
    expect(rt.status()[0]).toMatchObject({ poll: true, minRxMs: 200, localDiscriminator: before });
    // a different neighbor: a new session
    rt.reload({ B1: { neighbor_ip: "192.0.2.9", min_rx: 200 } });
    expect(rt.state("B1")).toBe(false);
    expect(rt.status()[0]!.localDiscriminator).not.toBe(before);
  });
});

describe("bfd_instance intervals", () => {
  test("min_rx/min_tx/idle_tx take keepalived's milliseconds with up to 3 decimals (kept in µs)", () => {
    const text = "bfd_instance b1 {\n  neighbor_ip 192.0.2.2\n  min_rx 1.5\n  min_tx 2.25\n  idle_tx 1000.125\n}\n";
    const loaded = loadConfigText(text, "b.conf", { hostname: "h", env: {} });
    expect(loaded.diagnostics.errors).toEqual([]);
    const [b1] = bfdInstances(loaded.model.bfd_instance).instances;
    expect({ rx: b1!.session.minRxUs, tx: b1!.session.minTxUs, idle: b1!.session.idleTxUs }).toEqual({ rx: 1500, tx: 2250, idle: 1000125 });
    // below keepalived's 1 ms minimum is a config error
    const bad = loadConfigText(text.replace("min_rx 1.5", "min_rx 0.5"), "b.conf", { hostname: "h", env: {} });
    expect(bad.diagnostics.errors.map((d) => d.message).join()).toContain("min_rx: value 0.5 out of range");
  });
});
