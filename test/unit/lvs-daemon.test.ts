// The LVS daemon's ha_suspend wiring: the checkers of an ha_suspend virtual server are
// suspended until one of its addresses is local, follow the address source both ways, and
// the source is not consulted at all without ha_suspend. The default source lists real addresses.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { type LocalAddressSource, pollingLocalAddresses, startLvsDaemon } from "../../src/daemon/lvs-daemon.ts";
import type { VrrpEvents } from "../../src/daemon/vrrp-events.ts";
import type { IpvsApi, IpvsDestinationEntry, IpvsServiceEntry } from "../../src/lvs/ipvs-types.ts";

const quiet: Logger = { info() {}, debug() {}, warn() {}, error() {} };

/** An IPVS table that accepts everything and holds nothing (ha_suspend is about the checkers). */
const nullIpvs = (): IpvsApi => ({
  info: () => ({ version: "1.2.1", versionCode: 0x10201, connTableSize: 4096 }),
  services: (): IpvsServiceEntry[] => [],
  getService: () => undefined,
  addService() {}, editService() {}, deleteService() {},
  destinations: (): IpvsDestinationEntry[] => [],
  addDestination() {}, editDestination() {}, deleteDestination() {},
  flush() {}, zero() {},
  timeouts: () => ({ tcp: 900, tcpFin: 120, udp: 300 }),
  setTimeouts() {},
  daemons: () => [],
  startDaemon() {}, stopDaemon() {}, close() {},
});

const model = (text: string) => loadConfigText(text, "/tmp/lvs-daemon.conf", { hostname: "h", env: {} }).model;
const events = { fifos: undefined, mail() {} } as unknown as VrrpEvents;

/** A config whose checkers never get to run during a test (delay_loop 60, alpha: no connect at start). */
const conf = (haSuspend: boolean) => `
virtual_server 192.0.2.1 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  delay_loop 60
  ${haSuspend ? "ha_suspend" : ""}
  real_server 192.0.2.10 80 {
    TCP_CHECK {
      alpha
      warmup 60
    }
  }
}
`;

/** An address source the test drives: `set` changes the addresses and notifies the watcher. */
function fakeSource(initial: string[]) {
  let addrs = initial;
  let cb: (() => void) | undefined;
  let lists = 0;
  const source: LocalAddressSource = {
    list: () => (lists++, addrs),
    watch: (onChange) => ((cb = onChange), () => void (cb = undefined)),
  };
  return {
    source,
    set(next: string[]) {
      addrs = next;
      cb?.();
    },
    get watching() {
      return cb !== undefined;
    },
    get lists() {
      return lists;
    },
  };
}

describe("startLvsDaemon: ha_suspend follows the local addresses", () => {
  test("suspended while no service address is local; the checkers resume when it is added and stop when it goes", async () => {
    const f = fakeSource(["192.0.2.50"]);
    const d = startLvsDaemon(model(conf(true)), { log: quiet, events, openIpvs: () => ({ ok: true, ipvs: nullIpvs() }), localAddresses: f.source })!;
    try {
      expect(f.watching).toBe(true);
      expect(d.status().virtualServers[0]!.suspended).toBe(true);
      f.set(["192.0.2.50", "192.0.2.1"]);
      expect(d.status().virtualServers[0]!.suspended).toBe(false);
      f.set(["192.0.2.50"]);
      expect(d.status().virtualServers[0]!.suspended).toBe(true);
    } finally {
      await d.stop();
    }
    expect(f.watching).toBe(false);
  });

  test("a VIP already local at start: not suspended from the start", async () => {
    const f = fakeSource(["192.0.2.1"]);
    const d = startLvsDaemon(model(conf(true)), { log: quiet, events, openIpvs: () => ({ ok: true, ipvs: nullIpvs() }), localAddresses: f.source })!;
    expect(d.status().virtualServers[0]!.suspended).toBe(false);
    await d.stop();
  });

  test("without ha_suspend the addresses are never read", async () => {
    const f = fakeSource([]);
    const d = startLvsDaemon(model(conf(false)), { log: quiet, events, openIpvs: () => ({ ok: true, ipvs: nullIpvs() }), localAddresses: f.source })!;
    expect(d.status().virtualServers[0]!.suspended).toBe(false);
    expect(f.lists).toBe(0);
    expect(f.watching).toBe(false);
    // a reload that adds ha_suspend starts following them
    d.reload(model(conf(true)));
    expect(f.watching).toBe(true);
    expect(d.status().virtualServers[0]!.suspended).toBe(true);
    await d.stop();
  });
});

describe("pollingLocalAddresses", () => {
  test("lists this namespace's addresses (loopback's 127.0.0.1 among them)", () => {
    const s = pollingLocalAddresses(quiet);
    const stop = s.watch(() => {});
    try {
      expect(s.list()).toContain("127.0.0.1");
    } finally {
      stop();
    }
  });
});
