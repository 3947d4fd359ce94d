/**
 * The BFD session state machine (src/bfd/session.ts) on a fake clock: two sessions joined by
 * a simulated link, and single sessions fed hand-made packets.
 */
import { describe, expect, test } from "bun:test";
import { BfdState, decodeBfd, encodeBfd, type BfdControl } from "../../src/bfd/codec.ts";
import { BfdSession, type BfdOutput, type BfdSessionConfig } from "../../src/bfd/session.ts";

const ms = 1000; // µs per ms

function cfg(over: Partial<BfdSessionConfig> = {}): BfdSessionConfig {
  return { name: "B1", minRxUs: 100 * ms, minTxUs: 100 * ms, idleTxUs: 1000 * ms, detectMult: 3, passive: false, ttl: 255, maxHops: 0, ...over };
}

let discr = 0x1000;
function session(over: Partial<BfdSessionConfig> = {}, random: () => number = () => 0.5): BfdSession {
  return new BfdSession(cfg(over), { random, newDiscriminator: () => ++discr });
}

function pkt(b: Uint8Array): BfdControl {
  const r = decodeBfd(b);
  if (!r.ok) throw new Error(r.error);
  return r.packet;
}

function control(over: Partial<BfdControl>): BfdControl {
  return {
    version: 1, diag: 0, state: BfdState.Down, poll: false, final: false, controlPlaneIndependent: false, authPresent: false,
    demand: false, multipoint: false, detectMult: 3, length: 24, myDiscriminator: 0xabc, yourDiscriminator: 0,
    desiredMinTxInterval: 1000 * ms, requiredMinRxInterval: 100 * ms, requiredMinEchoRxInterval: 0, ...over,
  };
}

function out(o: BfdOutput | string): BfdOutput {
  if (typeof o === "string") throw new Error(`discarded: ${o}`);
  return o;
}

/** Two sessions on a link with 1 ms delay; `cut` drops one direction. */
class Link {
  now = 0;
  queue: Array<{ at: number; to: "a" | "b"; data: Uint8Array }> = [];
  sent: Record<"a" | "b", Array<{ at: number; p: BfdControl }>> = { a: [], b: [] };
  states: Record<"a" | "b", number[]> = { a: [BfdState.Down], b: [BfdState.Down] };
  events: Record<"a" | "b", boolean[]> = { a: [], b: [] };
  cut = { a: false, b: false }; // cut.a: packets from a are lost
  constructor(readonly a: BfdSession, readonly b: BfdSession) {}
  #take(from: "a" | "b", o: BfdOutput): void {
    const to = from === "a" ? "b" : "a";
    for (const d of o.send) {
      this.sent[from].push({ at: this.now, p: pkt(d) });
      if (!this.cut[from]) this.queue.push({ at: this.now + 1, to, data: d });
    }
    this.events[from].push(...o.events);
    const s = this[from];
    const st = this.states[from];
    if (st.at(-1) !== s.sessionState) st.push(s.sessionState);
  }
  start(): void {
    this.#take("a", this.a.start(this.now));
    this.#take("b", this.b.start(this.now));
  }
  /** Runs until `until` ms, event by event. */
  run(until: number): void {
    for (let guard = 0; guard < 100000; guard++) {
      const next = Math.min(this.queue.reduce((m, q) => Math.min(m, q.at), Infinity), this.a.nextDeadline() ?? Infinity, this.b.nextDeadline() ?? Infinity);
      if (next > until) {
        this.now = until;
        return;
      }
      this.now = next;
      const due = this.queue.filter((q) => q.at <= this.now);
      this.queue = this.queue.filter((q) => q.at > this.now);
      for (const q of due) this.#take(q.to, out(this[q.to].receive(pkt(q.data), 255, this.now)));
      for (const k of ["a", "b"] as const) if ((this[k].nextDeadline() ?? Infinity) <= this.now) this.#take(k, this[k].advance(this.now));
    }
    throw new Error("simulation did not settle");
  }
}

describe("BFD session: handshake and negotiation", () => {
  test("Down → Init → Up three-way handshake, then Poll/Final moves both to min_tx", () => {
    const link = new Link(session(), session());
    link.start();
    link.run(5000);
    expect(link.a.sessionState).toBe(BfdState.Up);
    expect(link.b.sessionState).toBe(BfdState.Up);
    // both started together: each saw the other's Down first, so each went through Init
    expect(link.states.a).toEqual([BfdState.Down, BfdState.Init, BfdState.Up]);
    expect(link.states.b).toEqual([BfdState.Down, BfdState.Init, BfdState.Up]);
    expect(link.events.a).toEqual([false, true]);
    expect(link.a.remoteDiscr).toBe(link.b.localDiscr);
    // a Poll went out on reaching Up and was answered by a Final
    const polls = link.sent.a.filter((s) => s.p.poll);
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect(link.sent.b.some((s) => s.p.final && s.at >= polls[0]!.at)).toBe(true);
    expect(link.a.poll).toBe(false);
    expect(link.a.localTxInterval).toBe(100 * ms);
    expect(link.a.localDetectTime).toBe(300 * ms);
    // while not Up the packets advertised idle_tx; while Up, min_tx
    for (const s of link.sent.a) expect(s.p.desiredMinTxInterval).toBe(s.p.state === BfdState.Up ? 100 * ms : 1000 * ms);
    // steady state: consecutive Up packets of a are 75–90 ms apart (jitter), poll answers aside
    const ups = link.sent.a.filter((s) => s.p.state === BfdState.Up && !s.p.final && s.at > 3000);
    expect(ups.length).toBeGreaterThan(15);
    for (let i = 1; i < ups.length; i++) {
      const gap = ups[i]!.at - ups[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(75);
      expect(gap).toBeLessThanOrEqual(90);
    }
  });

  test("a Down peer meeting one already in Init: Down → Up directly for the later one", () => {
    const a = session();
    const b = session();
    a.start(0);
    // b hears a's Down, goes Init and answers; a (Down) hears Init → Up
    out(b.receive(pkt(a.start(0).send[0]!), 255, 1));
    expect(b.sessionState).toBe(BfdState.Init);
    const init = b.buildPacket();
    const o = out(a.receive(init, 255, 2));
    expect(a.sessionState).toBe(BfdState.Up);
    expect(o.events).toEqual([true]);
    expect(a.poll).toBe(true);
  });

  test("the peer's larger min_rx and min_tx govern the intervals and the detection time", () => {
    const a = session();
    a.start(0);
    const peer = { myDiscriminator: 77, detectMult: 4, requiredMinRxInterval: 300 * ms, desiredMinTxInterval: 250 * ms };
    out(a.receive(control({ ...peer, state: BfdState.Init, yourDiscriminator: a.localDiscr, desiredMinTxInterval: 1000 * ms }), 255, 10));
    expect(a.sessionState).toBe(BfdState.Up);
    // computed before the transition, from Down: still the idle rate until a Poll/Final
    expect(a.localTxInterval).toBe(1000 * ms);
    expect(a.remoteTxInterval).toBe(1000 * ms); // max(min_rx 100, peer's idle 1000)
    expect(a.localDetectTime).toBe(4000 * ms);
    // the peer polls with its Up parameters; we answer Final at once and adopt them
    const o = out(a.receive(control({ ...peer, state: BfdState.Up, poll: true, yourDiscriminator: a.localDiscr }), 255, 20));
    expect(o.send.length).toBe(1);
    const fin = pkt(o.send[0]!);
    expect(fin.final).toBe(true);
    expect(fin.poll).toBe(false); // our own Poll's parameters ride on the Final
    expect(fin.desiredMinTxInterval).toBe(100 * ms);
    expect(a.localTxInterval).toBe(300 * ms); // max(min_tx 100, peer's min_rx 300)
    expect(a.remoteTxInterval).toBe(250 * ms);
    expect(a.localDetectTime).toBe(1000 * ms);
    // without Poll/Final, changes while Up are not adopted
    out(a.receive(control({ ...peer, state: BfdState.Up, desiredMinTxInterval: 500 * ms, yourDiscriminator: a.localDiscr }), 255, 30));
    expect(a.remoteTxInterval).toBe(250 * ms);
    expect(a.expireAt).toBe(30 + 1000);
  });
});

describe("BFD session: failure detection", () => {
  test("no packets for a detection time: Up → Down with diag 1, a Down event, a new discriminator", () => {
    const link = new Link(session(), session());
    link.start();
    link.run(4000);
    expect(link.a.up).toBe(true);
    const oldDiscr = link.a.localDiscr;
    link.cut.b = true;
    const cutAt = link.now;
    link.run(cutAt + 1000);
    expect(link.a.sessionState).toBe(BfdState.Down);
    expect(link.a.localDiag).toBe(1);
    expect(link.a.remoteDiscr).toBe(0);
    expect(link.events.a).toEqual([false, true, false]);
    expect(link.a.localDiscr).not.toBe(oldDiscr);
    const down = link.sent.a.find((s) => s.at > cutAt && s.p.state === BfdState.Down)!;
    expect(down.p.diag).toBe(1);
    // detected within the detection time (3 × 100 ms) after the last packet got through
    expect(down.at - cutAt).toBeLessThanOrEqual(301);
    expect(down.at - cutAt).toBeGreaterThan(200);
    // b hears a's Down (diag 1) and goes Down too, with diag 3
    expect(link.b.sessionState).not.toBe(BfdState.Up);
    expect(link.events.b.at(-1)).toBe(false);
    // when the path heals, they come back Up
    link.cut.b = false;
    link.run(link.now + 5000);
    expect(link.a.up && link.b.up).toBe(true);
    expect(link.events.a.at(-1)).toBe(true);
  });

  test("the peer saying Down while we are Up: Down with diag 3 (Neighbor Signaled Session Down)", () => {
    const a = session();
    a.start(0);
    out(a.receive(control({ state: BfdState.Init, yourDiscriminator: a.localDiscr }), 255, 5));
    expect(a.up).toBe(true);
    const o = out(a.receive(control({ state: BfdState.Down, diag: 1, yourDiscriminator: a.localDiscr }), 255, 50));
    expect(a.sessionState).toBe(BfdState.Down);
    expect(a.localDiag).toBe(3);
    expect(o.events).toEqual([false]);
    expect(o.log.some((l) => l.text.includes("Entering Down state (Local diagnostic - Neighbor Signaled Session Down, Remote diagnostic - Control Detection Time Expired)"))).toBe(true);
  });

  test("remote AdminDown: Down with diag 3, no event (as keepalived), reset after a detection time", () => {
    const a = session();
    a.start(0);
    out(a.receive(control({ state: BfdState.Init, yourDiscriminator: a.localDiscr }), 255, 5));
    expect(a.up).toBe(true);
    const o = out(a.receive(control({ state: BfdState.AdminDown, diag: 7, yourDiscriminator: a.localDiscr }), 255, 50));
    expect(a.sessionState).toBe(BfdState.Down);
    expect(a.localDiag).toBe(3);
    expect(o.events).toEqual([]);
    // AdminDown from a peer in Down changes nothing
    const again = out(a.receive(control({ state: BfdState.AdminDown, diag: 7 }), 255, 60));
    expect(a.sessionState).toBe(BfdState.Down);
    expect(again.events).toEqual([]);
    // after one detection time (3 × 1000 ms idle rate of the peer) the remote state is forgotten
    a.advance(50 + 3000);
    expect(a.remoteDiscr).toBe(0);
    expect(a.remoteSessionState).toBe(BfdState.Down);
  });

  test("Init without the peer following expires back to Down", () => {
    const a = session();
    a.start(0);
    out(a.receive(control({ state: BfdState.Down }), 255, 10));
    expect(a.sessionState).toBe(BfdState.Init);
    // the peer keeps sending Down: Init does not re-arm the timer, so it expires 3 s after entering Init
    out(a.receive(control({ state: BfdState.Down }), 255, 1000));
    a.advance(3009);
    expect(a.sessionState).toBe(BfdState.Init);
    const o = a.advance(3010);
    expect(a.sessionState).toBe(BfdState.Down);
    expect(a.localDiag).toBe(1);
    expect(o.events).toEqual([]); // it was never Up
  });
});

describe("BFD session: passive, TTL, timers", () => {
  test("passive: silent until the peer speaks, then sends; silent again once Down", () => {
    const a = session({ passive: true });
    const o = a.start(0);
    expect(o.send).toEqual([]);
    expect(o.events).toEqual([false]);
    expect(a.nextDeadline()).toBeUndefined();
    out(a.receive(control({ state: BfdState.Down }), 255, 100));
    expect(a.sessionState).toBe(BfdState.Init);
    expect(a.txAt).toBeDefined();
    const sent = a.advance(a.txAt!);
    expect(pkt(sent.send[0]!)).toMatchObject({ state: BfdState.Init, yourDiscriminator: 0xabc });
    // peer goes quiet: Init expires → Down, and a passive session stops sending
    a.advance(100 + 3000);
    expect(a.sessionState).toBe(BfdState.Down);
    expect(a.txAt).toBeUndefined();
  });

  test("an active session sends at once and then every idle_tx less jitter", () => {
    const a = session({}, () => 0);
    const o = a.start(0);
    expect(o.send.length).toBe(1);
    expect(pkt(o.send[0]!)).toMatchObject({ state: BfdState.Down, yourDiscriminator: 0, desiredMinTxInterval: 1000 * ms, requiredMinRxInterval: 100 * ms, detectMult: 3 });
    expect(a.txAt).toBe(900); // random 0 ⇒ the smallest jitter, 10 %
  });

  test("jitter stays within 10–25 % of the interval (keepalived's get_jitter)", () => {
    expect(session({}, () => 0).txDelayMs()).toBe(900);
    expect(session({}, () => 0.9999999).txDelayMs()).toBe(750);
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const s = session({}, rnd);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const d = s.txDelayMs();
      expect(d).toBeGreaterThanOrEqual(750);
      expect(d).toBeLessThanOrEqual(900);
      seen.add(Math.round(d / 10));
    }
    expect(seen.size).toBeGreaterThan(10);
  });

  test("GTSM: a packet that crossed a router is dropped unless max_hops allows it", () => {
    const a = session();
    a.start(0);
    expect(a.receive(control({}), 254, 1)).toBe("ttl");
    expect(a.sessionState).toBe(BfdState.Down);
    expect(a.receive(control({ authPresent: true }), 255, 1)).toBe("auth");
    const b = session({ maxHops: 1 });
    b.start(0);
    expect(b.receive(control({}), 253, 1)).toBe("ttl");
    expect(typeof b.receive(control({}), 254, 1)).toBe("object");
    const c = session({ maxHops: 255 });
    c.start(0);
    expect(typeof c.receive(control({}), 1, 1)).toBe("object");
    // unknown TTL (no control message) is not checked, as keepalived
    const d = session();
    d.start(0);
    expect(typeof d.receive(control({}), 0, 1)).toBe("object");
  });

  test("AdminDown sessions send nothing and drop packets", () => {
    const a = session();
    a.start(0);
    a.adminDown();
    expect(a.nextDeadline()).toBeUndefined();
    expect(a.receive(control({}), 255, 1)).toBe("admin-down");
    expect(encodeBfd(a.buildPacket())[1]! >> 6).toBe(BfdState.AdminDown);
  });
});
