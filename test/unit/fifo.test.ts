import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, lstatSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  NotifyFifo,
  NotifyFifos,
  fifoSpecsFromGlobal,
  formatRealServer,
  formatVirtualServer,
  planFifos,
  rsFifoLine,
  vrrpFifoLine,
  vsFifoLine,
} from "../../src/daemon/fifo.ts";
import type { Logger } from "../../src/daemon/logger.ts";

const dir = mkdtempSync(join(tmpdir(), "vipd-fifo-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const fresh = (name = "fifo") => join(dir, `${name}-${++seq}`);

function captureLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`I ${m}`),
    warn: (m) => lines.push(`W ${m}`),
    error: (m) => lines.push(`E ${m}`),
    debug: () => {},
  };
}

/** Waits until `cond` holds, polling every 10 ms for at most `ms`. */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (cond()) return true;
    await Bun.sleep(10);
  }
  return cond();
}

describe("line formats (keepalived's vrrp_notify.c / ipwrapper.c)", () => {
  test("instance and group lines", () => {
    expect(vrrpFifoLine("INSTANCE", "VI_1", "MASTER", 100)).toBe('INSTANCE "VI_1" MASTER 100\n');
    expect(vrrpFifoLine("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 254)).toBe('INSTANCE "VI_1" MASTER_RX_LOWER_PRI 254\n');
    expect(vrrpFifoLine("INSTANCE", "v6 one", "BACKUP_PRIORITY", 90)).toBe('INSTANCE "v6 one" BACKUP_PRIORITY 90\n');
    // groups always report priority 0
    expect(vrrpFifoLine("GROUP", "G", "BACKUP", 77)).toBe('GROUP "G" BACKUP 0\n');
  });

  test("virtual and real server identities", () => {
    const vs = { ip: "192.0.2.1", port: 80, protocol: "TCP" as const };
    expect(formatVirtualServer(vs)).toBe("[192.0.2.1]:tcp:80");
    expect(formatVirtualServer({ ip: "2001:db8::1", port: 53, protocol: "UDP" })).toBe("[2001:db8::1]:udp:53");
    expect(formatVirtualServer({ fwmark: 5, protocol: "TCP" })).toBe("FWM 5");
    expect(formatVirtualServer({ group: "web", port: 443, protocol: "TCP" })).toBe("[web]:443");
    expect(formatRealServer({ ip: "198.51.100.7", port: 8080 }, vs)).toBe("[198.51.100.7]:tcp:8080");
    expect(vsFifoLine(formatVirtualServer(vs), true)).toBe("VS [192.0.2.1]:tcp:80 UP\n");
    expect(rsFifoLine("[192.0.2.2]:tcp:80", "[192.0.2.1]:tcp:80", false)).toBe("RS [192.0.2.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n");
    // no trailing NUL (keepalived's write(size) quirk is not reproduced)
    expect(vsFifoLine("x", false).includes("\0")).toBe(false);
  });
});

describe("planFifos routing", () => {
  test("notify_fifo gets everything, vrrp_ only VRRP, lvs_ only LVS", () => {
    const p = planFifos({ notify_fifo: { path: "/a" }, vrrp_notify_fifo: { path: "/v" }, lvs_notify_fifo: { path: "/l" } });
    expect(p.messages).toEqual([]);
    expect(p.fifos.map((f) => [f.spec.path, f.vrrp, f.lvs])).toEqual([
      ["/a", true, true],
      ["/v", true, false],
      ["/l", false, true],
    ]);
  });

  test("a vrrp_/lvs_ FIFO equal to notify_fifo is ignored", () => {
    const p = planFifos({ notify_fifo: { path: "/a" }, vrrp_notify_fifo: { path: "/x/../a" }, lvs_notify_fifo: { path: "/a" } });
    expect(p.fifos.map((f) => f.spec.path)).toEqual(["/a"]);
    expect(p.messages.length).toBe(2);
    expect(p.messages[0]).toContain("ignoring vrrp FIFO");
    expect(p.messages[1]).toContain("ignoring LVS FIFO");
  });

  test("shared vrrp_/lvs_ FIFO opens once; with two scripts the LVS one is ignored", () => {
    const p = planFifos({ vrrp_notify_fifo: { path: "/s", script: { argv: ["v"] } }, lvs_notify_fifo: { path: "/s", script: { argv: ["l"] } } });
    expect(p.fifos.length).toBe(1);
    expect(p.fifos[0]!.vrrp && p.fifos[0]!.lvs).toBe(true);
    expect(p.fifos[0]!.spec.script?.argv).toEqual(["v"]);
    expect(p.messages[0]).toContain("ignoring LVS FIFO script");
    const q = planFifos({ vrrp_notify_fifo: { path: "/s" }, lvs_notify_fifo: { path: "/s", script: { argv: ["l"] } } });
    expect(q.fifos[0]!.spec.script?.argv).toEqual(["l"]);
    expect(q.messages).toEqual([]);
  });

  test("fifoSpecsFromGlobal resolves owners and scripts", () => {
    const def = { uid: 1, gid: 1, user: "daemon" };
    const { config, errors } = fifoSpecsFromGlobal(
      {
        notify_fifo: { path: "/n" },
        notify_fifo_script: { cmd: "/bin/reader -x" },
        vrrp_notify_fifo: { path: "/v", user: "nobody" },
        lvs_notify_fifo: { path: "/l", user: "ghost" },
      },
      def,
      (u) => (u === "nobody" ? { uid: 65534, gid: 65534, user: u } : { error: `no ${u}` }),
    );
    expect(config.notify_fifo).toEqual({ path: "/n", owner: def, script: { argv: ["/bin/reader", "-x"], identity: def } });
    expect(config.vrrp_notify_fifo?.owner?.uid).toBe(65534);
    expect(config.lvs_notify_fifo).toBeUndefined();
    expect(errors.length).toBe(1);
  });
});

describe("NotifyFifo on a real FIFO", () => {
  test("creates the FIFO (0644 less umask), a reader gets the lines in order, close unlinks it", async () => {
    const path = fresh();
    const log = captureLog();
    const fifo = NotifyFifo.open({ path, log })!;
    expect(fifo).toBeDefined();
    const st = lstatSync(path);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777 & ~0o644).toBe(0);
    const out = join(dir, `out-${seq}`);
    const reader = Bun.spawn(["/bin/sh", "-c", `exec cat "$0" > "${out}"`, path], { stdout: "ignore", stderr: "ignore" });
    const lines: string[] = [];
    for (let i = 0; i < 200; i++) {
      const line = vrrpFifoLine("INSTANCE", `VI_${i}`, i % 2 ? "MASTER" : "BACKUP", i % 255);
      lines.push(line);
      expect(fifo.write(line)).toBe(true);
    }
    expect(await until(() => existsSync(out) && readFileSync(out, "utf8").length === lines.join("").length)).toBe(true);
    fifo.close();
    expect(existsSync(path)).toBe(false);
    await reader.exited; // EOF once our (only) writer closed
    expect(readFileSync(out, "utf8")).toBe(lines.join(""));
    expect(fifo.written).toBe(200);
    expect(fifo.dropped).toBe(0);
    expect(fifo.write("late\n")).toBe(false);
  });

  test("no reader: opening and writing never block; a full pipe drops lines and counts them", () => {
    const path = fresh();
    const log = captureLog();
    const fifo = NotifyFifo.open({ path, log })!;
    const line = vrrpFifoLine("INSTANCE", "VI_1", "MASTER", 100); // 27 bytes
    const t0 = performance.now();
    let ok = 0;
    for (let i = 0; i < 5000; i++) if (fifo.write(line)) ok++;
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(2000);
    // A Linux pipe holds 64 KiB by default: about 2427 lines of 27 bytes fit.
    expect(ok).toBeGreaterThan(1000);
    expect(ok).toBeLessThan(5000);
    expect(fifo.dropped).toBe(5000 - ok);
    expect(fifo.written).toBe(ok);
    // one warning for the whole run of drops, not one per line
    expect(log.lines.filter((l) => l.includes("is full")).length).toBe(1);
    fifo.close();
  });

  test("an existing FIFO is used and kept; a regular file is refused", () => {
    const path = fresh();
    Bun.spawnSync(["mkfifo", path]);
    const log = captureLog();
    const fifo = NotifyFifo.open({ path, log })!;
    expect(fifo.write("x\n")).toBe(true);
    fifo.close();
    expect(lstatSync(path).isFIFO()).toBe(true); // not ours to remove
    const file = fresh("file");
    writeFileSync(file, "");
    expect(NotifyFifo.open({ path: file, log })).toBeUndefined();
    expect(log.lines.some((l) => l.includes("is not a fifo we own"))).toBe(true);
    expect(statSync(file).isFile()).toBe(true);
  });

  test("an impossible path is reported, not thrown", () => {
    const log = captureLog();
    expect(NotifyFifo.open({ path: join(dir, "no/such/dir/f"), log })).toBeUndefined();
    expect(log.lines.some((l) => l.includes("Unable to create notify fifo") && l.includes("errno 2"))).toBe(true);
  });

  test("fifo script gets the path as its last argument, reads the lines, and is killed on close", async () => {
    const path = fresh();
    const out = join(dir, `script-out-${seq}`);
    const argsFile = join(dir, `script-args-${seq}`);
    const log = captureLog();
    // $0 = the -c name, then our own arg, then the FIFO path appended by vipd.
    const script = { argv: ["/bin/sh", "-c", `echo "$@" > "${argsFile}"; cat "$2" > "${out}"; exec sleep 30`, "reader", "first"] };
    const fifos = NotifyFifos.open({ notify_fifo: { path, script } }, log);
    expect(fifos.wantsVrrp && fifos.wantsLvs).toBe(true);
    fifos.instance("VI_1", "BACKUP", 100);
    fifos.instance("VI_1", "MASTER", 100);
    fifos.group("G", "MASTER");
    fifos.virtualServer({ ip: "192.0.2.1", port: 80, protocol: "TCP" }, true);
    fifos.realServer({ ip: "192.0.2.2", port: 80 }, { ip: "192.0.2.1", port: 80, protocol: "TCP" }, false);
    const expected = [
      'INSTANCE "VI_1" BACKUP 100\n',
      'INSTANCE "VI_1" MASTER 100\n',
      'GROUP "G" MASTER 0\n',
      "VS [192.0.2.1]:tcp:80 UP\n",
      "RS [192.0.2.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n",
    ].join("");
    expect(await until(() => existsSync(out) && readFileSync(out, "utf8") === expected)).toBe(true);
    expect(readFileSync(argsFile, "utf8").trim()).toBe(`first ${path}`);
    fifos.close(200);
    expect(existsSync(path)).toBe(false);
    // the reader (which would sleep 30 s after EOF) must have been killed
    const pid = fifos.scriptPids()[0]!;
    expect(pid).toBeGreaterThan(0);
    expect(await until(() => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "), 3000)).toBe(true);
  });

  test("vrrp_ and lvs_ FIFOs get only their own lines; notify_fifo gets both", async () => {
    const paths = { all: fresh("all"), vrrp: fresh("vrrp"), lvs: fresh("lvs") };
    const log = captureLog();
    const fifos = NotifyFifos.open({ notify_fifo: { path: paths.all }, vrrp_notify_fifo: { path: paths.vrrp }, lvs_notify_fifo: { path: paths.lvs } }, log);
    const outs = Object.fromEntries(Object.entries(paths).map(([k, p]) => [k, `${p}.out`]));
    const readers = Object.entries(paths).map(([k, p]) => Bun.spawn(["/bin/sh", "-c", `exec cat "$0" > "${outs[k]}"`, p]));
    fifos.instance("VI_1", "FAULT", 90);
    fifos.realServer({ ip: "192.0.2.9", port: 25 }, { ip: "192.0.2.1", port: 25, protocol: "TCP" }, true);
    fifos.instance("VI_1", "MASTER_PRIORITY", 80);
    const want = {
      all: 'INSTANCE "VI_1" FAULT 90\nRS [192.0.2.9]:tcp:25 [192.0.2.1]:tcp:25 UP\nINSTANCE "VI_1" MASTER_PRIORITY 80\n',
      vrrp: 'INSTANCE "VI_1" FAULT 90\nINSTANCE "VI_1" MASTER_PRIORITY 80\n',
      lvs: "RS [192.0.2.9]:tcp:25 [192.0.2.1]:tcp:25 UP\n",
    };
    const got = (k: "all" | "vrrp" | "lvs") => (existsSync(outs[k]!) ? readFileSync(outs[k]!, "utf8") : "");
    expect(await until(() => got("all") === want.all && got("vrrp") === want.vrrp && got("lvs") === want.lvs)).toBe(true);
    fifos.close();
    await Promise.all(readers.map((r) => r.exited));
    for (const k of ["all", "vrrp", "lvs"] as const) expect(got(k)).toBe(want[k]);
  });
});
