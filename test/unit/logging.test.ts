import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SdNotifier, monotonicUsec } from "../../ffi/sd-notify.ts";
import { SyslogClient, rfc3164Line } from "../../ffi/syslog.ts";
import { createLogger, jsonRecord, parseFacility } from "../../src/daemon/logger.ts";
import { DgramReceiver } from "./dgram-receiver.ts";

const dir = mkdtempSync(join(tmpdir(), "vipd-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RFC3164 = /^<(\d+)>([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) vipd\[(\d+)\]: (.*)$/s;

describe("syslog", () => {
  test("RFC 3164 line: PRI, space-padded day, local time, ident[pid]", () => {
    const at = new Date(2026, 10, 2, 3, 4, 5);
    expect(rfc3164Line(3 * 8 + 6, at, "vipd", 42, "(VI_1) Entering MASTER STATE")).toBe("<30>Nov  2 03:04:05 vipd[42]: (VI_1) Entering MASTER STATE");
    expect(rfc3164Line(23 * 8 + 3, new Date(2026, 0, 15, 23, 59, 9), "vipd", 1, "x")).toBe("<187>Jan 15 23:59:09 vipd[1]: x");
  });

  test("facility names and keepalived's -S numbers", () => {
    expect(parseFacility("daemon")).toBe(3);
    expect(parseFacility("user")).toBe(1);
    expect(parseFacility("local0")).toBe(16);
    expect(parseFacility("LOCAL7")).toBe(23);
    expect(parseFacility("0")).toBe(16); // keepalived: -S 0 = LOG_LOCAL0
    expect(parseFacility("7")).toBe(23);
    expect(parseFacility("8")).toBeUndefined();
    expect(parseFacility("kern")).toBeUndefined();
  });

  test("lines arrive at the socket with PRI = facility*8 + severity for each level", () => {
    const path = join(dir, "log1");
    const rx = new DgramReceiver(path);
    try {
      const console: string[] = [];
      const log = createLogger({ detail: true, console: false, format: "text", syslog: new SyslogClient({ path, facility: 3 }), write: (l) => console.push(l) });
      log.info("(VI_1) Entering MASTER STATE");
      log.warn("careful");
      log.error("broken");
      log.debug("detail");
      const got = rx.drain();
      expect(got.length).toBe(4);
      const parsed = got.map((g) => RFC3164.exec(g)!);
      expect(parsed.every((m) => m !== null)).toBe(true);
      expect(parsed.map((m) => Number(m[1]))).toEqual([3 * 8 + 6, 3 * 8 + 4, 3 * 8 + 3, 3 * 8 + 7]);
      expect(parsed.map((m) => Number(m[7]))).toEqual([process.pid, process.pid, process.pid, process.pid]);
      expect(parsed.map((m) => m[8])).toEqual(["(VI_1) Entering MASTER STATE", "WARNING: careful", "ERROR: broken", "detail"]);
      expect(console).toEqual([]); // syslog took them all
      log.close?.();
    } finally {
      rx.close();
    }
  });

  test("local3 via -S: PRI 19*8+6; debug suppressed without --log-detail", () => {
    const path = join(dir, "log2");
    const rx = new DgramReceiver(path);
    try {
      const log = createLogger({ detail: false, console: false, format: "text", syslog: new SyslogClient({ path, facility: parseFacility("local3")! }) });
      log.info("hello");
      log.debug("hidden");
      const got = rx.drain();
      expect(got.length).toBe(1);
      expect(got[0]!.startsWith(`<${19 * 8 + 6}>`)).toBe(true);
    } finally {
      rx.close();
    }
  });

  test("missing socket: falls back to stderr, backs off, recovers when the socket appears", () => {
    const path = join(dir, "log-missing");
    let t = 0;
    const client = new SyslogClient({ path, facility: 3, nowMs: () => t });
    const out: string[] = [];
    const log = createLogger({ detail: false, console: false, format: "text", syslog: client, write: (l) => out.push(l) });
    log.info("one");
    expect(client.lastError).toBe(2); // ENOENT
    expect(out.length).toBe(1);
    expect(out[0]).toMatch(/vipd\[\d+\]: one\n$/);
    const rx = new DgramReceiver(path);
    try {
      t = 100; // still inside the 250 ms backoff: not retried
      log.info("two");
      expect(rx.drain()).toEqual([]);
      expect(out.length).toBe(2);
      t = 300; // retried and delivered
      log.info("three");
      expect(rx.drain().map((l) => l.replace(/^.*: /, ""))).toEqual(["three"]);
      expect(out.length).toBe(2);
    } finally {
      rx.close();
    }
  });

  test("a socket nobody reads any more (ECONNREFUSED) falls back to stderr, never throws", () => {
    const path = join(dir, "log-dead");
    const rx = new DgramReceiver(path);
    rx.close(); // the path stays, the listener is gone
    const client = new SyslogClient({ path, facility: 3 });
    const out: string[] = [];
    const log = createLogger({ detail: false, console: false, format: "text", syslog: client, write: (l) => out.push(l) });
    expect(() => log.error("lost?")).not.toThrow();
    expect(client.lastError).toBe(111);
    expect(out.join("")).toContain("ERROR: lost?");
  });

  test("--log-console writes to the console as well as syslog", () => {
    const path = join(dir, "log3");
    const rx = new DgramReceiver(path);
    try {
      const out: string[] = [];
      const log = createLogger({ detail: false, console: true, format: "text", syslog: new SyslogClient({ path, facility: 3 }), write: (l) => out.push(l) });
      log.info("both");
      expect(rx.drain().length).toBe(1);
      expect(out.length).toBe(1);
    } finally {
      rx.close();
    }
  });
});

describe("--log-format json", () => {
  test("one JSON object per line with time, level, pid, instance and msg", () => {
    const out: string[] = [];
    const at = new Date("2026-11-22T03:04:05.678Z");
    const log = createLogger({ detail: true, console: true, format: "json", write: (l) => out.push(l), now: () => at });
    log.info("(VI_1) Entering MASTER STATE");
    log.error('quote " and\nnewline');
    log.debug("d");
    expect(out.length).toBe(3);
    expect(out.every((l) => l.endsWith("\n") && l.indexOf("\n") === l.length - 1)).toBe(true);
    const recs = out.map((l) => JSON.parse(l));
    expect(recs[0]).toEqual({ time: "2026-11-22T03:04:05.678Z", level: "info", ident: "vipd", pid: process.pid, instance: "VI_1", msg: "(VI_1) Entering MASTER STATE" });
    expect(recs[1].level).toBe("error");
    expect(recs[1].msg).toBe('quote " and\nnewline');
    expect(recs[1].instance).toBeUndefined();
    expect(recs[2].level).toBe("debug");
  });

  test("json bodies go to syslog too", () => {
    const path = join(dir, "log4");
    const rx = new DgramReceiver(path);
    try {
      const log = createLogger({ detail: false, console: false, format: "json", syslog: new SyslogClient({ path, facility: 3 }) });
      log.warn("(VI_2) x");
      const [line] = rx.drain();
      const m = RFC3164.exec(line!)!;
      expect(Number(m[1])).toBe(28);
      expect(JSON.parse(m[8]!)).toMatchObject({ level: "warning", instance: "VI_2", msg: "(VI_2) x" });
    } finally {
      rx.close();
    }
    expect(jsonRecord("info", "plain", new Date(0), "vipd", 7)).toBe('{"time":"1970-01-01T00:00:00.000Z","level":"info","ident":"vipd","pid":7,"msg":"plain"}');
  });
});

describe("sd_notify", () => {
  for (const kind of ["path", "abstract"] as const) {
    test(`READY/RELOADING/STOPPING/STATUS reach a ${kind} socket`, () => {
      const name = kind === "path" ? join(dir, "notify") : `@vipd-test-notify-${process.pid}`;
      const rx = new DgramReceiver(name);
      try {
        const env: Record<string, string | undefined> = { NOTIFY_SOCKET: name };
        const n = SdNotifier.fromEnv(env);
        expect(env.NOTIFY_SOCKET).toBeUndefined(); // scripts must not inherit it
        expect(n.enabled).toBe(true);
        const before = monotonicUsec();
        expect(n.ready("2 instances: 1 MASTER, 1 BACKUP")).toBe(0);
        expect(n.reloading()).toBe(0);
        expect(n.stopping()).toBe(0);
        expect(n.status("multi\nline")).toBe(0);
        const after = monotonicUsec();
        const got = rx.drain();
        expect(got.length).toBe(4);
        expect(got[0]).toBe(`READY=1\nSTATUS=2 instances: 1 MASTER, 1 BACKUP\nMAINPID=${process.pid}`);
        const rel = /^RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=Reloading configuration$/.exec(got[1]!);
        expect(rel).not.toBeNull();
        const usec = BigInt(rel![1]!);
        expect(usec >= before && usec <= after).toBe(true);
        expect(got[2]).toBe("STOPPING=1\nSTATUS=Stopping");
        expect(got[3]).toBe("STATUS=multi line");
        n.close();
      } finally {
        rx.close();
      }
    });
  }

  test("MONOTONIC_USEC is CLOCK_MONOTONIC (matches /proc/uptime within a second)", () => {
    const uptime = Number((require("node:fs").readFileSync("/proc/uptime", "utf8") as string).split(" ")[0]);
    expect(Math.abs(Number(monotonicUsec()) / 1e6 - uptime)).toBeLessThan(1.5);
  });

  test("without NOTIFY_SOCKET every call is a no-op; a missing socket is reported, not thrown", () => {
    const off = SdNotifier.fromEnv({});
    expect(off.enabled).toBe(false);
    expect(off.ready("x")).toBe(0);
    const missing = new SdNotifier(join(dir, "nobody"));
    expect(missing.ready("x")).toBe(2);
  });
});
