/** Both FdWatcher implementations deliver bursts of raw datagrams, none lost or merged (root only). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLab, type Lab, type LabNode } from "./lab.ts";
import { withNetns } from "../../ffi/netns.ts";
import { VrrpSocket } from "../../ffi/vrrp-socket.ts";
import { createFdWatcher, SigioFdWatcher, WorkerFdWatcher } from "../../ffi/fdwatch.ts";
import * as L from "../../ffi/libc.ts";

const BURST = 200;

async function waitFor(cond: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond() && performance.now() < deadline) await Bun.sleep(5);
  return cond();
}

describe.skipIf(process.getuid?.() !== 0)("FdWatcher bursts", () => {
  let lab: Lab;
  let A: LabNode, B: LabNode;

  beforeAll(() => {
    lab = createLab({ purpose: "fdwatch", nodes: ["a", "b"], v4: "192.0.2.0/24", v6: true });
    A = lab.node("a");
    B = lab.node("b");
  });
  afterAll(() => lab?.destroy());

  test("createFdWatcher picks the implementation from the option and VIPD_FDWATCH", () => {
    const saved = process.env.VIPD_FDWATCH;
    const made = [createFdWatcher({ impl: "sigio" }), createFdWatcher({ impl: "worker" })];
    process.env.VIPD_FDWATCH = "worker";
    made.push(createFdWatcher());
    process.env.VIPD_FDWATCH = "";
    made.push(createFdWatcher());
    if (saved === undefined) delete process.env.VIPD_FDWATCH;
    else process.env.VIPD_FDWATCH = saved;
    for (const w of made) w.close();
    expect(made.map((w) => w.constructor)).toEqual([SigioFdWatcher, WorkerFdWatcher, WorkerFdWatcher, SigioFdWatcher]);
  });

  for (const impl of ["sigio", "worker"] as const) {
    for (const family of ["inet", "inet6"] as const) {
      test(`${impl}: ${BURST} back-to-back ${family} datagrams arrive one by one, in order`, async () => {
        const watcher = createFdWatcher({ impl, backstopMs: 5000 });
        const tx = withNetns(A.ns, () => VrrpSocket.open({ family, ifname: A.ifname }));
        const rx = withNetns(B.ns, () => VrrpSocket.open({ family, ifname: B.ifname, rcvbuf: 1 << 20 }));
        try {
          const seqs: number[] = [];
          const lengths = new Set<number>();
          rx.start(watcher, (data) => {
            lengths.add(data.length);
            const off = family === "inet" ? 20 : 0;
            seqs.push(new DataView(data.buffer, data.byteOffset + off).getUint32(8));
          });
          const t0 = performance.now();
          for (let i = 0; i < BURST; i++) {
            const pdu = new Uint8Array(12);
            pdu.set([0x31, 1, 100, 0, 0, 100, 0, 0]);
            new DataView(pdu.buffer).setUint32(8, i);
            if (family === "inet") {
              const p = new Uint8Array(32);
              p.set([0x45, 0xc0, 0, 32, 0, 0, 0, 0, 255, 112]);
              p.set(L.parseIPv4(A.v4!), 12);
              p.set([224, 0, 0, 18], 16);
              p.set(pdu, 20);
              tx.send(p, "224.0.0.18");
            } else {
              tx.send(pdu, "ff02::12");
            }
          }
          // The backstop is 5 s, so arrival within 3 s means the watcher itself woke up.
          expect(await waitFor(() => seqs.length >= BURST)).toBe(true);
          const elapsed = performance.now() - t0;
          await Bun.sleep(20);
          expect(seqs).toEqual(Array.from({ length: BURST }, (_, i) => i));
          expect([...lengths]).toEqual([family === "inet" ? 32 : 12]);
          expect(elapsed).toBeLessThan(3000);
        } finally {
          tx.close();
          rx.close();
          watcher.close();
        }
      });
    }
  }

  test("after unwatch the handler is no longer called", async () => {
    for (const impl of ["sigio", "worker"] as const) {
      const watcher = createFdWatcher({ impl, backstopMs: 50 });
      const tx = withNetns(A.ns, () => VrrpSocket.open({ family: "inet6", ifname: A.ifname }));
      const rx = withNetns(B.ns, () => VrrpSocket.open({ family: "inet6", ifname: B.ifname }));
      try {
        let calls = 0;
        watcher.watch(rx.rxFd, () => { calls++; });
        await Bun.sleep(120);
        expect(calls).toBeGreaterThan(0); // initial call + backstop
        watcher.unwatch(rx.rxFd);
        const before = calls;
        tx.send(new Uint8Array([0x31, 1, 100, 0, 0, 100, 0, 0]), "ff02::12");
        await Bun.sleep(150);
        expect(calls).toBe(before);
      } finally {
        tx.close();
        rx.close();
        watcher.close();
      }
    }
  });
});
