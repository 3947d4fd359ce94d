import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlError, request } from "../../src/daemon/control-client.ts";
import { startControlServer, statusHandlers, type ControlHandlers, type ControlServer } from "../../src/daemon/control-server.ts";
import type { KeepalivedJsonV1 } from "../../src/daemon/keepalived-json.ts";
import type { DaemonStatus } from "../../src/daemon/status-types.ts";
import { newStats } from "../../src/vrrp/types.ts";

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "vipd-control-"));
let seq = 0;
const sockPath = (): string => join(dir, `c${++seq}.sock`);

const started: ControlServer[] = [];
const children: { kill(sig?: number): void; pid: number }[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => {
  unhandled.push(e);
};

beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => {
  while (started.length) started.pop()!.close();
});
afterAll(() => {
  for (const c of children) {
    try {
      c.kill(9);
    } catch {
      // already gone
    }
  }
  process.off("unhandledRejection", onUnhandled);
  rmSync(dir, { recursive: true, force: true });
});

function sampleStatus(): DaemonStatus {
  return {
    version: "0.1.0-test",
    pid: 4321,
    configFile: "/etc/keepalived/keepalived.conf",
    startedAt: Date.now() / 1000 - 3600,
    routerId: "lb1",
    instances: [
      {
        name: "VI_1", interface: "eth0", family: "inet", vrid: 51, version: 2, state: "MASTER", wantState: "BACKUP",
        basePriority: 150, effectivePriority: 140, advertInt: 1, masterAdvertInt: 1, masterAddress: "192.0.2.1",
        masterPriority: 140, sourceAddress: "192.0.2.1", vips: ["192.0.2.100/24"], evips: [], vipsSet: true,
        authType: "PASS", nopreempt: false, preemptDelay: 0, accept: true, faults: [], lastTransition: Date.now() / 1000 - 42,
        stats: { ...newStats(), advert_sent: 77, advert_rcvd: 5, become_master: 1, auth_failure: 3, ip_ttl_err: 2 }, extra: {},
      },
      {
        name: "VI_6", interface: "eth1", family: "inet6", vrid: 7, version: 3, state: "BACKUP", wantState: "BACKUP",
        basePriority: 100, effectivePriority: 100, advertInt: 0.1, masterAdvertInt: 0.5, masterAddress: "fe80::2",
        masterPriority: 200, sourceAddress: "fe80::1", vips: ["2001:db8::10/64"], evips: ["2001:db8:1::1/64"], vipsSet: false,
        authType: "NONE", nopreempt: true, preemptDelay: 0, accept: false, faults: [], lastTransition: Date.now() / 1000 - 7,
        stats: { ...newStats(), advert_rcvd: 900 }, extra: {},
      },
    ],
  };
}

async function serve(path: string, handlers?: ControlHandlers, options?: Parameters<typeof startControlServer>[2]): Promise<ControlServer> {
  const s = await startControlServer(path, handlers ?? { ...statusHandlers({ status: sampleStatus }), reload: () => "reloaded" }, options);
  started.push(s);
  return s;
}

/**
 * Sends raw chunks on one connection and collects what comes back until `lines` answer lines
 * (or `bytes` characters) arrived, the server closes, or `waitMs` passes. `hangUp` closes our side right after sending.
 */
function raw(path: string, chunks: (string | Uint8Array)[], opts: { lines?: number; bytes?: number; waitMs?: number; hangUp?: boolean } = {}): Promise<{ text: string; closedByServer: boolean }> {
  const { lines = Infinity, bytes = Infinity, waitMs = 1500, hangUp = false } = opts;
  return new Promise((resolve, reject) => {
    let text = "";
    let done = false;
    let closedByServer = false;
    let sock: { end(): void } | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.end();
      resolve({ text, closedByServer });
    };
    const timer = setTimeout(finish, waitMs);
    Bun.connect({
      unix: path,
      socket: {
        open(s) {
          sock = s;
          for (const c of chunks) s.write(c);
          if (hangUp) finish();
        },
        data(_s, d) {
          text += new TextDecoder().decode(d);
          if (text.length >= bytes || text.split("\n").length - 1 >= lines) finish();
        },
        close() {
          closedByServer = !done;
          finish();
        },
        connectError(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });
}

const answers = (text: string): { ok: boolean; error?: string; result?: unknown }[] =>
  text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { ok: boolean; error?: string; result?: unknown });

describe("control server and client", () => {
  test("status, ping, json and reload round trip through a real unix socket", async () => {
    const p = sockPath();
    const fixed = sampleStatus();
    await serve(p, statusHandlers({ status: () => fixed }));
    expect(await request(p, "ping")).toBe("pong");
    expect(await request(p, "status")).toEqual(JSON.parse(JSON.stringify(fixed)));
  });

  test("status answer carries the provider's data; json is keepalived's layout", async () => {
    const p = sockPath();
    await serve(p);
    const status = (await request(p, "status")) as DaemonStatus;
    expect(status.instances.map((i) => [i.name, i.state, i.stats.advert_sent])).toEqual([["VI_1", "MASTER", 77], ["VI_6", "BACKUP", 0]]);
    const dump = (await request(p, "json")) as KeepalivedJsonV1;
    expect(dump.map((e) => [e.data.iname, e.data.state, e.data.vrid])).toEqual([["VI_1", 2, 51], ["VI_6", 1, 7]]);
    const v2 = (await request(p, "json", 2000, { version: 2 })) as { vrrp: unknown[] };
    expect(v2.vrrp.length).toBe(2);
    expect(await request(p, "reload")).toBe("reloaded");
  });

  test("the socket file has mode 0600 and close() removes it", async () => {
    const p = sockPath();
    const s = await serve(p);
    const st = statSync(p);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    s.close();
    expect(existsSync(p)).toBe(false);
    await expect(request(p, "ping")).rejects.toThrow(`cannot connect to ${p}: ENOENT (is vipd running?)`);
  });

  test("a missing parent directory is created", async () => {
    const p = join(dir, "sub", "deeper", "v.sock");
    await serve(p);
    expect(await request(p, "ping")).toBe("pong");
  });

  test("a stale socket left by a killed daemon is replaced", async () => {
    const p = sockPath();
    const child = Bun.spawn([process.execPath, "-e", `Bun.listen({unix:${JSON.stringify(p)},socket:{data(){}}}); console.log("up"); setTimeout(()=>{}, 60000)`], { stdout: "pipe" });
    children.push(child);
    const reader = child.stdout.getReader();
    await reader.read(); // "up"
    child.kill(9);
    await child.exited;
    expect(statSync(p).isSocket()).toBe(true);
    await expect(request(p, "ping")).rejects.toThrow("ECONNREFUSED");
    await serve(p);
    expect(await request(p, "ping")).toBe("pong");
  });

  test("a second server on a live socket is refused and the first keeps answering", async () => {
    const p = sockPath();
    await serve(p);
    await expect(startControlServer(p, { ping: () => "second" })).rejects.toThrow("already listening");
    expect(await request(p, "ping")).toBe("pong");
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  test("a regular file at the path is never replaced", async () => {
    const p = join(dir, "not-a-socket");
    writeFileSync(p, "precious");
    await expect(startControlServer(p, {})).rejects.toThrow("is not a socket");
    expect(readFileSync(p, "utf8")).toBe("precious");
  });

  test("unknown commands and failing handlers give ok:false, and the client throws their message", async () => {
    const p = sockPath();
    await serve(p, {
      ping: () => "pong",
      boom: () => {
        throw new Error("kaboom");
      },
      later: async () => {
        await Bun.sleep(5);
        throw new Error("async kaboom");
      },
      cyclic: () => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      },
      nothing: () => undefined,
    });
    const err = await request(p, "frobnicate").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).kind).toBe("remote");
    expect((err as ControlError).message).toContain("unknown command 'frobnicate'");
    await expect(request(p, "boom")).rejects.toThrow("boom failed: kaboom");
    await expect(request(p, "later")).rejects.toThrow("async kaboom");
    await expect(request(p, "cyclic")).rejects.toThrow("cannot encode result");
    expect(await request(p, "nothing")).toBeNull();
    expect(await request(p, "ping")).toBe("pong");
    // Inherited object members are not commands.
    await expect(request(p, "constructor")).rejects.toThrow("unknown command");
    await expect(request(p, "__proto__")).rejects.toThrow("unknown command");
  });

  test("pipelined requests on one connection are answered in order", async () => {
    const p = sockPath();
    await serve(p, { slow: async () => (await Bun.sleep(20), "slow"), fast: () => "fast" });
    const r = await raw(p, ['{"cmd":"slow"}\n{"cmd":"fast"}\n', '{"cmd":"slow"}\r\n\n'], { lines: 3 });
    expect(answers(r.text).map((a) => a.result)).toEqual(["slow", "fast", "slow"]);
  });

  test("garbage gets an error answer and the connection stays usable", async () => {
    const p = sockPath();
    await serve(p);
    const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a]);
    const r = await raw(p, [binary, "not json\n", "[1,2]\n", '{"cmd":5}\n', "null\n", '{"cmd":"ping"}\n'], { lines: 6 });
    const a = answers(r.text);
    expect(a.map((x) => x.ok)).toEqual([false, false, false, false, false, true]);
    expect(a[0]!.error).toContain("not UTF-8");
    expect(a[1]!.error).toContain("not valid JSON");
    expect(a[2]!.error).toContain('"cmd"');
    expect(a[5]!.result).toBe("pong");
  });

  test("an oversized line (with or without newline) gets an error and a close; the server goes on", async () => {
    const p = sockPath();
    await serve(p);
    const big = "x".repeat(64 * 1024 + 10);
    const r1 = await raw(p, [big], { waitMs: 3000 });
    expect(r1.closedByServer).toBe(true);
    expect(answers(r1.text)[0]!.error).toContain("longer than 65536 bytes");
    const r2 = await raw(p, [`{"cmd":"ping","pad":"${"y".repeat(70_000)}"}\n{"cmd":"ping"}\n`], { waitMs: 3000 });
    expect(r2.closedByServer).toBe(true);
    expect(answers(r2.text).map((a) => a.ok)).toEqual([false]);
    // Fed in small pieces it is still caught (the bound is on the accumulated line).
    const pieces = Array.from({ length: 80 }, () => "z".repeat(1000));
    const r3 = await raw(p, pieces, { waitMs: 3000 });
    expect(r3.closedByServer).toBe(true);
    expect(await request(p, "ping")).toBe("pong");
  });

  test("half lines then disconnect, and hang-ups mid-answer, leave the server answering", async () => {
    const p = sockPath();
    const s = await serve(p, { ...statusHandlers({ status: sampleStatus }), big: () => "b".repeat(4 * 1024 * 1024) });
    for (let n = 0; n < 10; n++) await raw(p, ['{"cmd":"sta'], { hangUp: true });
    for (let n = 0; n < 5; n++) await raw(p, ['{"cmd":"big"}\n'], { hangUp: true });
    // One client asks for a big answer, reads a little, then vanishes.
    const partial = await raw(p, ['{"cmd":"big"}\n{"cmd":"big"}\n'], { bytes: 1, waitMs: 5000 });
    expect(partial.text.length).toBeGreaterThan(0);
    expect(await request(p, "ping")).toBe("pong");
    const big = (await request(p, "big")) as string;
    expect(big.length).toBe(4 * 1024 * 1024);
    await Bun.sleep(50);
    expect(s.connections()).toBe(0);
  });

  test("50 concurrent clients, some hostile, are all served", async () => {
    const p = sockPath();
    await serve(p);
    const jobs: Promise<unknown>[] = [];
    for (let n = 0; n < 50; n++) {
      if (n % 5 === 0) jobs.push(raw(p, [new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x0a])], { lines: 1 }).then((r) => answers(r.text)[0]!.ok));
      else if (n % 5 === 1) jobs.push(raw(p, ['{"cmd":'], { hangUp: true }).then(() => "hung up"));
      else jobs.push(request(p, n % 2 ? "status" : "ping").then((r) => (r === "pong" ? "pong" : (r as DaemonStatus).instances.length)));
    }
    const results = await Promise.all(jobs);
    const expected = Array.from({ length: 50 }, (_, n) => (n % 5 === 0 ? false : n % 5 === 1 ? "hung up" : n % 2 ? 2 : "pong"));
    expect(results).toEqual(expected);
    expect(await request(p, "ping")).toBe("pong");
  });

  test("connection and queue limits cut off excess clients with an error", async () => {
    const p = sockPath();
    await serve(p, { ping: () => "pong", slow: async () => (await Bun.sleep(30), "slow") }, { maxConnections: 2, maxPendingPerConnection: 3 });
    const holders = [raw(p, [], { waitMs: 300 }), raw(p, [], { waitMs: 300 })];
    await Bun.sleep(50);
    const third = await raw(p, ['{"cmd":"ping"}\n'], { waitMs: 1000 });
    expect(third.closedByServer).toBe(true);
    expect(answers(third.text)[0]!.error).toContain("too many control connections");
    await Promise.all(holders);
    await Bun.sleep(20);
    const flood = await raw(p, ['{"cmd":"slow"}\n'.repeat(10)], { waitMs: 2000 });
    expect(flood.closedByServer).toBe(true);
    const a = answers(flood.text);
    // The three queued requests are answered first, then the refusal, then the close.
    expect(a.map((x) => x.ok)).toEqual([true, true, true, false]);
    expect(a[3]!.error).toContain("more than 3 requests queued");
    expect(await request(p, "ping")).toBe("pong");
  });

  test("an idle connection holding half a line is closed after the idle timeout", async () => {
    const p = sockPath();
    const s = await serve(p, { ping: () => "pong" }, { idleTimeoutSeconds: 1 });
    const t0 = performance.now();
    const r = await raw(p, ['{"cmd":"pi'], { waitMs: 5000 });
    expect(r.closedByServer).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    expect(s.connections()).toBe(0);
    expect(await request(p, "ping")).toBe("pong");
  });

  test("the client times out on a server that never answers, and reports a hang-up", async () => {
    const silent = sockPath();
    const l1 = Bun.listen({ unix: silent, socket: { data() {} } });
    const t0 = performance.now();
    const err = await request(silent, "ping", 150).catch((e: unknown) => e);
    const took = performance.now() - t0;
    l1.stop(true);
    expect((err as ControlError).kind).toBe("timeout");
    expect((err as Error).message).toBe(`no answer from ${silent} within 150 ms`);
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1000);

    const rude = sockPath();
    const l2 = Bun.listen({ unix: rude, socket: { data(s) { s.end(); } } });
    await expect(request(rude, "ping")).rejects.toThrow("closed the connection without answering");
    l2.stop(true);

    const liar = sockPath();
    const l3 = Bun.listen({ unix: liar, socket: { data(s) { s.write("hello\n"); } } });
    await expect(request(liar, "ping")).rejects.toThrow("not JSON");
    l3.stop(true);
  });

  test("no unhandled rejections were raised", () => {
    expect(unhandled).toEqual([]);
  });
});

/** Runs `bun src/main.ts status ...` without blocking our event loop (the server lives in this process). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts"), "status", ...args], { stdout: "pipe", stderr: "pipe", cwd: ROOT });
  children.push(proc);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("vipd status CLI", () => {
  test("human output: one table per instance with state, priorities, master, counters, errors, transition", async () => {
    const p = sockPath();
    await serve(p);
    const r = await cli(["--control", p]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain("vipd 0.1.0-test, pid 4321");
    expect(out).toMatch(/^VI_1 +eth0 +VRID 51 +IPv4 +VRRPv2$/m);
    expect(out).toMatch(/^VI_6 +eth1 +VRID 7 +IPv6 +VRRPv3$/m);
    expect(out).toMatch(/state +MASTER \(configured BACKUP\)/);
    expect(out).toMatch(/priority +base 150, effective 140/);
    expect(out).toMatch(/master +192\.0\.2\.1 \(this node\), priority 140/);
    expect(out).toMatch(/master +fe80::2, priority 200/);
    expect(out).toMatch(/advert interval +0\.1s \(master's 0\.5s\)/);
    expect(out).toMatch(/VIPs +192\.0\.2\.100\/24 \(installed\)/);
    expect(out).toMatch(/adverts +sent 77, received 5/);
    expect(out).toMatch(/errors +ip_ttl_err 2, auth_failure 3$/m);
    expect(out).toMatch(/errors +none$/m);
    expect(out).toMatch(/last transition +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(4[2-5]s ago\)/);
    expect(out).toMatch(/last transition +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \([7-9]s ago\)/);
  });

  test("--json prints the DaemonStatus; --keepalived-json prints keepalived's dump", async () => {
    const p = sockPath();
    await serve(p);
    const j = await cli(["--control", p, "--json"]);
    expect(j.code).toBe(0);
    const status = JSON.parse(j.stdout) as DaemonStatus;
    expect(status.instances.map((i) => i.name)).toEqual(["VI_1", "VI_6"]);
    expect(status.instances[0]!.stats.auth_failure).toBe(3);
    const k = await cli(["--control", p, "--keepalived-json"]);
    expect(k.code).toBe(0);
    expect(k.stdout.split("\n").length).toBe(2); // one line, like keepalived.json
    const dump = JSON.parse(k.stdout) as KeepalivedJsonV1;
    expect(dump.map((e) => [e.data.iname, e.data.state, e.data.wantstate, e.stats.advert_rcvd])).toEqual([["VI_1", 2, 1, 5], ["VI_6", 1, 1, 900]]);
    const k2 = await cli(["--control", p, "--keepalived-json", "--json-version", "2"]);
    expect(Object.keys(JSON.parse(k2.stdout))).toEqual(["vrrp"]);
  });

  test("a missing socket exits 1 with one line and no stack", async () => {
    const p = join(dir, "absent.sock");
    const r = await cli(["--control", p]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`vipd status: cannot connect to ${p}: ENOENT (is vipd running?)\n`);
  });

  test("bad arguments exit 2", async () => {
    const r = await cli(["--json", "--keepalived-json", "--control", join(dir, "x.sock")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("exclude each other");
  });
});

describe("status text with LVS", () => {
  test("virtual servers, quorum, real server weights and checker states are shown", async () => {
    const { formatStatus } = await import("../../src/cli/status.ts");
    const text = formatStatus({
      version: "t", pid: 1, configFile: "c", startedAt: 0, routerId: "r", instances: [],
      lvs: {
        available: true, syncDaemons: [],
        virtualServers: [{
          key: "192.0.2.1 80/TCP", label: "[192.0.2.1]:tcp:80", services: [], scheduler: "wrr", quorum: 2, hysteresis: 0, quorumUp: false,
          weightSum: 1, suspended: false,
          sorryServer: { address: "198.51.100.99", port: 80, active: true, ipvsWeight: 1 },
          realServers: [
            { ref: "a", address: "198.51.100.1", port: 80, fwdMethod: "NAT", alive: true, configuredWeight: 1, effectiveWeight: 1, ipvsWeight: 1, inhibitOnFailure: false,
              checkers: [{ index: 0, type: "TCP_CHECK", up: true, hasRun: true, weightDelta: 0, latencyMs: 1.25 }] },
            { ref: "b", address: "198.51.100.2", port: 80, fwdMethod: "NAT", alive: false, configuredWeight: 3, effectiveWeight: 0, ipvsWeight: null, inhibitOnFailure: false,
              checkers: [{ index: 0, type: "HTTP_GET", up: false, hasRun: true, weightDelta: 0 }] },
          ],
        }],
      },
    } as never, 0);
    expect(text).toContain("virtual server [192.0.2.1]:tcp:80 wrr, quorum 2: DOWN (alive weight 1)");
    expect(text).toContain("UP   198.51.100.1:80 NAT weight 1/1, ipvs 1  [TCP_CHECK up 1.3 ms]");
    expect(text).toContain("DOWN 198.51.100.2:80 NAT weight 3/0, ipvs -  [HTTP_GET down]");
    expect(text).toContain("sorry server 198.51.100.99:80 (ACTIVE)");
  });
});
