/**
 * Every health checker against real servers in a namespace: python's http.server, openssl
 * s_server (self-signed certificates, SNI), aiosmtpd, dnsmasq, UDP echo/silent servers, shell
 * scripts, ICMP and a track_file. The checkers run in the other node through
 * checkers-driver.ts (the real CheckRunner on a keepalived.conf) and report as JSON lines.
 *
 * One timeline serves all cases at once: every checker runs from the start; the "flap" servers
 * are stopped and restarted together; the down transition must come within keepalived's bound
 * (delay_loop 1, retry 2, delay_before_retry 0.5, connect_timeout 1).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLab, run, type Lab, waitListening } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const PYTHON = "/usr/bin/python3";
const have = (cmd: string[]) => ROOT && Bun.spawnSync(cmd, { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
const TOOLS = ROOT && existsSync(PYTHON) && have([PYTHON, "-c", "import aiosmtpd"]) && have(["openssl", "version"]) && have(["dnsmasq", "--version"]);
const DRIVER = resolve(import.meta.dir, "checkers-driver.ts");

const SRV = "192.0.2.1";
const FLAP_IP = "192.0.2.10";
const NOBODY = "192.0.2.99";
// checker timing for every virtual server
const DL = 1000, RETRY = 2, DBR = 500, CT = 1000;

interface Report {
  t: number;
  rsRef: string;
  checkerIndex: number;
  type: string;
  up: boolean;
  ok: boolean;
  transition?: "up" | "down";
  first: boolean;
  detail: string;
  latencyMs: number;
  weightDelta?: number;
  retrying: boolean;
}

/** A UDP/TCP helper server: tcp-silent (accepts, never speaks), tcp-banner, udp-echo, udp-silent. */
const AUX_PY = `
import socket, sys, threading, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode.startswith("tcp"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(128)
    held = []
    while True:
        c, _ = s.accept()
        if mode == "tcp-banner":
            c.sendall(sys.argv[4].encode() + b"\\r\\n")
        held.append(c)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    while True:
        d, a = s.recvfrom(65535)
        if mode == "udp-echo":
            s.sendto(d, a)
`;

describe.skipIf(!TOOLS)("health checkers against real servers in a namespace", () => {
  let lab: Lab;
  let work: string;
  let driver: Bun.Subprocess<"pipe", "pipe", "pipe"> | undefined;
  const procs = new Map<string, Bun.Subprocess>();
  const reports: Report[] = [];
  const logs: string[] = [];
  let timeline: Promise<Timeline>;
  const md5 = (s: string) => createHash("md5").update(s).digest("hex");

  interface Timeline {
    stopAt: number;
    restartAt: number;
    readyAt: number;
  }

  const of = (port: number) => reports.filter((r) => r.rsRef === String(port));
  const transitions = (port: number) => of(port).filter((r) => r.transition);

  /** Starts a server in the srv namespace under `name` (replacing a dead one). */
  function start(name: string, cmd: string[], cwd?: string): void {
    const p = Bun.spawn(["ip", "netns", "exec", lab.node("srv").ns, ...cmd], { stdout: "ignore", stderr: "ignore", stdin: "ignore", ...(cwd ? { cwd } : {}) });
    procs.set(name, p);
  }

  async function stop(name: string): Promise<void> {
    const p = procs.get(name);
    if (!p) return;
    p.kill("SIGKILL");
    await Promise.race([p.exited, Bun.sleep(3000)]);
    procs.delete(name);
  }


  async function waitFor(what: string, ms: number, cond: () => boolean): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; reports:\n${reports.slice(-40).map((r) => JSON.stringify(r)).join("\n")}`);
      await Bun.sleep(50);
    }
  }

  const FLAPS = { tcp: 10002, http: 10012, ssl: 10022, smtp: 10032, dns: 10042, udp: 10052, misc: 10062, ping: 10072, file: 10081 } as const;

  function startFlapServers(): void {
    start("http-flap", [PYTHON, "-m", "http.server", "8081", "--bind", SRV, "--directory", join(work, "web")]);
    start("ssl-flap", ["openssl", "s_server", "-accept", `${SRV}:8444`, "-cert", join(work, "c.pem"), "-key", join(work, "k.pem"), "-WWW", "-quiet"], join(work, "web"));
    start("smtp-flap", [PYTHON, "-m", "aiosmtpd", "-n", "-l", `${SRV}:2527`]);
    start("dns-flap", dnsmasq(5355));
    start("udp-flap", [PYTHON, join(work, "aux.py"), "udp-echo", SRV, "9003"]);
  }

  function dnsmasq(port: number): string[] {
    return ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root", `--port=${port}`, `--listen-address=${SRV}`, "--bind-interfaces",
      "--no-resolv", "--no-hosts", "--address=/example.test/192.0.2.50", `--pid-file=${join(work, `dns-${port}.pid`)}`];
  }

  function config(): string {
    const index = readFileSync(join(work, "web", "index.html"), "utf8");
    const status = readFileSync(join(work, "web", "status.txt"), "utf8");
    const vs = (port: number, rsIp: string, rsPort: number, checker: string, proto = "TCP", rsExtra = "") => `
virtual_server 203.0.113.1 ${port} {
  protocol ${proto}
  delay_loop ${DL / 1000}
  retry ${RETRY}
  delay_before_retry ${DBR / 1000}
  connect_timeout ${CT / 1000}
  warmup 0
  real_server ${rsIp} ${rsPort} {
    ${rsExtra}
    ${checker}
  }
}`;
    const w = work;
    return [
      `track_file tf_flap {\n  file "${w}/flap.value"\n}`,
      `track_file tf_weight {\n  file "${w}/weight.value"\n}`,
      vs(10001, SRV, 8080, "TCP_CHECK { }"),
      vs(10002, SRV, 8081, "TCP_CHECK { }"),
      vs(10003, NOBODY, 80, "TCP_CHECK { }"),
      vs(10004, SRV, 7, "TCP_CHECK { }"),
      vs(10011, SRV, 8080, `HTTP_GET { http_protocol 1.1\n url { path /index.html\n digest ${md5(index)} }\n url { path /status.txt\n regex "status: o+k" } }`),
      vs(10012, SRV, 8081, "HTTP_GET { url { path /index.html } }"),
      vs(10013, SRV, 8090, "HTTP_GET { url { path / } }"),
      vs(10014, SRV, 8080, `HTTP_GET { url { path /index.html\n digest ${"0".repeat(32)} } }`),
      vs(10015, SRV, 8080, "HTTP_GET { url { path /missing } }"),
      vs(10016, SRV, 8080, "HTTP_GET { url { path /missing\n status_code 404 } }"),
      vs(10017, SRV, 8080, `HTTP_GET { url { path /status.txt\n regex "status: bad" } }`),
      vs(10021, SRV, 8443, `SSL_GET { enable_sni\n sni_name sni.test\n url { path /index.html\n digest ${md5(index)} } }`),
      vs(10022, SRV, 8444, "SSL_GET { url { path /index.html } }"),
      vs(10023, SRV, 8443, "SSL_GET { enable_sni\n sni_name wrong.test\n url { path /index.html } }"),
      vs(10024, SRV, 8080, "SSL_GET { url { path /index.html } }"),
      vs(10025, SRV, 8090, "SSL_GET { url { path / } }"),
      vs(10031, SRV, 2525, "SMTP_CHECK { helo_name lb.vipd.test }"),
      vs(10032, SRV, 2527, "SMTP_CHECK { }"),
      vs(10033, SRV, 8090, "SMTP_CHECK { }"),
      vs(10034, SRV, 8091, "SMTP_CHECK { }"),
      vs(10041, SRV, 5353, "DNS_CHECK { type A\n name example.test }", "UDP"),
      vs(10042, SRV, 5355, "DNS_CHECK { type A\n name example.test }", "UDP"),
      vs(10043, SRV, 5353, "DNS_CHECK { type A\n name other.invalid }", "UDP"),
      vs(10044, SRV, 9002, "DNS_CHECK { }", "UDP"),
      vs(10051, SRV, 9000, "UDP_CHECK { payload 68656c6c6f\n require_reply 68656cXX6f }", "UDP"),
      vs(10052, SRV, 9003, "UDP_CHECK { payload 6869\n require_reply }", "UDP"),
      vs(10053, SRV, 9000, "UDP_CHECK { payload 68656c6c6f\n require_reply ffff }", "UDP"),
      vs(10054, SRV, 9002, "UDP_CHECK { }", "UDP"),
      vs(10055, SRV, 9002, "UDP_CHECK { require_reply }", "UDP"),
      vs(10056, SRV, 9009, "UDP_CHECK { }", "UDP"),
      vs(10061, SRV, 80, "MISC_CHECK { misc_path /bin/true }"),
      vs(10062, SRV, 80, `MISC_CHECK { misc_path "${w}/flag.sh" }`),
      vs(10063, SRV, 80, `MISC_CHECK { misc_path "${w}/exit12.sh"\n misc_dynamic }`, "TCP", "weight 3"),
      vs(10064, SRV, 80, `MISC_CHECK { misc_path "${w}/slow.sh"\n misc_timeout 1 }`),
      vs(10065, SRV, 80, "MISC_CHECK { misc_path /bin/false }"),
      vs(10071, SRV, 0, "PING_CHECK { }"),
      vs(10072, FLAP_IP, 0, "PING_CHECK { }"),
      vs(10073, NOBODY, 0, "PING_CHECK { }"),
      vs(10081, SRV, 80, "FILE_CHECK { track_file tf_flap\n weight 0 }"),
      vs(10082, SRV, 80, "FILE_CHECK { track_file tf_weight\n weight 2 }"),
      `bfd_instance bfd1 {\n  neighbor_ip ${SRV}\n}`,
      vs(10091, SRV, 80, "BFD_CHECK { name bfd1 }"),
    ].join("\n");
  }

  async function runTimeline(): Promise<Timeline> {
    const flapPorts = Object.values(FLAPS);
    // 1. everything up: each flap checker passed at least twice
    await waitFor("flap checkers up", 12_000, () => flapPorts.every((p) => of(p).filter((r) => r.ok).length >= (p === FLAPS.file ? 1 : 2)));
    // 2. stop the flap servers (and the ping address, the misc flag, the file value)
    await Promise.all(["http-flap", "ssl-flap", "smtp-flap", "dns-flap", "udp-flap"].map(stop));
    run(["ip", "-n", lab.node("srv").ns, "addr", "del", `${FLAP_IP}/24`, "dev", "eth0"]);
    unlinkSync(join(work, "flag"));
    writeFileSync(join(work, "flap.value"), "1\n");
    const stopAt = Date.now();
    await waitFor("flap checkers down", 12_000, () => flapPorts.every((p) => transitions(p).some((r) => r.transition === "down")));
    // 3. bring them back
    const restartAt = Date.now();
    startFlapServers();
    run(["ip", "-n", lab.node("srv").ns, "addr", "add", `${FLAP_IP}/24`, "dev", "eth0"]);
    writeFileSync(join(work, "flag"), "");
    writeFileSync(join(work, "flap.value"), "0\n");
    await waitListening(lab, "srv", [8081, 8444, 2527], [5355, 9003]);
    const readyAt = Date.now();
    await waitFor("flap checkers up again", 10_000, () => flapPorts.every((p) => transitions(p).some((r) => r.transition === "up")));
    await Bun.sleep(300); // a late extra transition would show up here
    return { stopAt, restartAt, readyAt };
  }

  beforeAll(async () => {
    lab = createLab({ purpose: "chk", nodes: ["srv", "lb"], v4: "192.0.2.0/24" });
    run(["ip", "-n", lab.node("srv").ns, "addr", "add", `${FLAP_IP}/24`, "dev", "eth0"]);
    // UDP checks learn of a closed port from ICMP port unreachables, which the kernel rate-limits
    // per peer (1/s): with several such checks at once, unlimited errors keep the cases apart.
    lab.exec("srv", ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"]);
    // PING_CHECK's unprivileged ping socket (a new namespace allows no group: "1 0")
    lab.exec("lb", ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    work = mkdtempSync(join(tmpdir(), "vipd-checkers-"));
    mkdirSync(join(work, "web"));
    writeFileSync(join(work, "web", "index.html"), "<html><body>vipd checker test page</body></html>\n".repeat(20));
    writeFileSync(join(work, "web", "status.txt"), "service status: ooook\n");
    writeFileSync(join(work, "aux.py"), AUX_PY);
    const script = (name: string, body: string) => {
      writeFileSync(join(work, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(work, name), 0o755);
    };
    script("flag.sh", `test -e "${work}/flag"`);
    script("exit12.sh", "exit 12");
    script("slow.sh", "sleep 10");
    writeFileSync(join(work, "flag"), "");
    writeFileSync(join(work, "flap.value"), "0\n");
    writeFileSync(join(work, "weight.value"), "3\n");
    for (const [k, cn] of [["", "default.test"], ["2", "sni.test"]] as const)
      run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(work, `k${k}.pem`), "-out", join(work, `c${k}.pem`), "-days", "2", "-subj", `/CN=${cn}`]);

    start("http", [PYTHON, "-m", "http.server", "8080", "--bind", SRV, "--directory", join(work, "web")]);
    start("ssl", ["openssl", "s_server", "-accept", `${SRV}:8443`, "-cert", join(work, "c.pem"), "-key", join(work, "k.pem"),
      "-servername", "sni.test", "-cert2", join(work, "c2.pem"), "-key2", join(work, "k2.pem"), "-servername_fatal", "-WWW", "-quiet"], join(work, "web"));
    start("smtp", [PYTHON, "-m", "aiosmtpd", "-n", "-l", `${SRV}:2525`]);
    start("dns", dnsmasq(5353));
    start("tcp-silent", [PYTHON, join(work, "aux.py"), "tcp-silent", SRV, "8090"]);
    start("tcp-banner", [PYTHON, join(work, "aux.py"), "tcp-banner", SRV, "8091", "554 go away"]);
    start("udp-echo", [PYTHON, join(work, "aux.py"), "udp-echo", SRV, "9000"]);
    start("udp-silent", [PYTHON, join(work, "aux.py"), "udp-silent", SRV, "9002"]);
    startFlapServers();
    await waitListening(lab, "srv", [8080, 8081, 8443, 8444, 2525, 2527, 8090, 8091], [5353, 5355, 9000, 9002, 9003]);

    writeFileSync(join(work, "keepalived.conf"), config());
    driver = Bun.spawn(["ip", "netns", "exec", lab.node("lb").ns, process.execPath, DRIVER, join(work, "keepalived.conf")], { stdout: "pipe", stderr: "pipe", stdin: "pipe" });
    void (async () => {
      let buf = "";
      for await (const chunk of driver!.stdout) {
        buf += new TextDecoder().decode(chunk);
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const o = JSON.parse(line);
            if (o.rsRef) reports.push(o as Report);
            else if (o.log) logs.push(`${o.log}: ${o.message}`);
            else if (o.configErrors) logs.push(`config: ${o.configErrors.join("; ")}`);
          } catch {
            logs.push(line);
          }
        }
      }
    })();
    timeline = runTimeline();
    timeline.catch(() => {}); // reported by the tests that await it
  }, 30_000);

  afterAll(async () => {
    if (driver) {
      driver.kill("SIGTERM");
      await Promise.race([driver.exited, Bun.sleep(2000)]);
      driver.kill("SIGKILL");
    }
    for (const name of [...procs.keys()]) await stop(name);
    lab?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  // ---- flapping and the down-transition bound ---------------------------------------------------

  test("flapping: every checker goes down then up, in that order, within keepalived's bounds", async () => {
    const tl = await timeline;
    const quick = DL + RETRY * DBR + (RETRY + 1) * 150 + 500; // refused/unreachable answers come at once
    const bounds: Record<keyof typeof FLAPS, [number, number]> = {
      tcp: [RETRY * DBR - 50, quick],
      http: [RETRY * DBR - 50, quick],
      ssl: [RETRY * DBR - 50, quick],
      smtp: [RETRY * DBR - 50, quick],
      dns: [RETRY * DBR - 50, quick],
      udp: [RETRY * DBR - 50, quick],
      misc: [RETRY * DBR - 50, quick],
      // each echo waits connect_timeout
      ping: [RETRY * DBR + RETRY * CT - 50, DL + RETRY * DBR + (RETRY + 1) * CT + 500],
      // event driven (inotify, 1 s poll backstop)
      file: [0, 1500],
    };
    for (const [kind, port] of Object.entries(FLAPS) as Array<[keyof typeof FLAPS, number]>) {
      const tr = transitions(port);
      expect({ kind, seq: tr.map((r) => r.transition) }).toEqual({ kind, seq: ["down", "up"] });
      const downAfter = tr[0]!.t - tl.stopAt;
      const [lo, hi] = bounds[kind];
      expect({ kind, downAfter, ok: downAfter >= lo && downAfter <= hi }).toEqual({ kind, downAfter, ok: true });
      // the failures before the down transition were retries, delay_before_retry apart
      if (kind !== "file" && kind !== "ping") {
        const fails = of(port).filter((r) => !r.ok && r.t >= tl.stopAt && r.t <= tr[0]!.t);
        expect({ kind, n: fails.length }).toEqual({ kind, n: RETRY + 1 });
        expect(fails.slice(0, RETRY).every((r) => r.retrying && r.up)).toBe(true);
      }
      const upAfter = tr[1]!.t - tl.readyAt;
      const upBound = kind === "http" || kind === "ssl" ? 2 * DL + 600 : DL + 600; // HTTP re-checks every url after the failed one passes
      expect(tr[1]!.t).toBeGreaterThanOrEqual(tl.restartAt);
      expect({ kind, upAfter, ok: upAfter <= upBound, around: upAfter <= upBound ? [] : of(port).filter((r) => r.t >= tl.restartAt).map((r) => `${r.t - tl.readyAt} ${r.ok} ${r.detail}`) }).toEqual({ kind, upAfter, ok: true, around: [] });
    }
    console.log(`down-transition times (ms after stop): ${Object.entries(FLAPS).map(([k, p]) => `${k} ${transitions(p)[0]!.t - tl.stopAt}`).join(", ")}`);
  }, 40_000);

  // ---- steady cases (checked once the timeline is over, so each ran several times) ---------------

  /** Asserts a checker that must stay up: passes every time, no transition. */
  function expectUp(port: number, detail?: RegExp): void {
    const rs = of(port);
    expect({ port, n: rs.length >= 3 }).toEqual({ port, n: true });
    expect({ port, bad: rs.filter((r) => !r.ok || !r.up || r.transition).map((r) => r.detail) }).toEqual({ port, bad: [] });
    if (detail) expect(rs.at(-1)!.detail).toMatch(detail);
  }

  /** Asserts a checker that must be down from its first check on, with this reason. */
  function expectDown(port: number, detail: RegExp, latency?: [number, number]): void {
    const rs = of(port);
    expect({ port, n: rs.length >= 2 }).toEqual({ port, n: true });
    expect({ port, first: rs[0]!.transition, up: rs.some((r) => r.up || r.ok) }).toEqual({ port, first: "down", up: false });
    expect({ port, detail: rs[0]!.detail }).toEqual({ port, detail: expect.stringMatching(detail) });
    // down: one attempt per delay_loop, no retries
    expect(rs.some((r) => r.retrying)).toBe(false);
    if (latency) for (const r of rs) expect({ port, lat: r.latencyMs, ok: r.latencyMs >= latency[0] && r.latencyMs <= latency[1] }).toEqual({ port, lat: r.latencyMs, ok: true });
  }

  const SLOW: [number, number] = [CT - 20, CT + 700];

  test("TCP_CHECK: up, refused, slow (connect_timeout)", async () => {
    await timeline;
    expectUp(10001, /success/);
    expectDown(10004, /ECONNREFUSED/, [0, 300]);
    expectDown(10003, /timeout/i, SLOW);
  });

  test("HTTP_GET: digest and regex on two urls, wrong digest, wrong status, accepted 404, regex mismatch, slow", async () => {
    await timeline;
    expectUp(10011);
    const urls = new Set(of(10011).map((r) => r.detail));
    expect([...urls].sort()).toEqual(["MD5 digest url(/index.html)", "Regex match url(/status.txt)"]);
    expectDown(10014, /MD5 digest error/);
    expectDown(10015, /HTTP status code error \(404\)/);
    expectUp(10016);
    expectDown(10017, /Regex match failed/);
    expectDown(10013, /Timeout WEB read/, SLOW);
  });

  test("SSL_GET: digest with SNI, SNI rejected by the server, plain server, slow handshake", async () => {
    await timeline;
    expectUp(10021, /MD5 digest/);
    expectDown(10023, /SSL handshake|UNRECOGNIZED_NAME/i);
    expectDown(10024, /SSL|handshake|Connection failed|ECONNRESET/i);
    expectDown(10025, /Timeout connecting/, SLOW);
  });

  test("SMTP_CHECK: dialogue with aiosmtpd, bad banner, silent server", async () => {
    await timeline;
    expectUp(10031, /succeed/);
    expectDown(10034, /Bad greeting banner.*554/);
    expectDown(10033, /Read timeout/, SLOW);
  });

  test("DNS_CHECK: dnsmasq answers, refuses an unknown name, silent server", async () => {
    await timeline;
    expectUp(10041);
    expectDown(10043, /rcode = [1-9]/);
    expectDown(10044, /timeout/, SLOW);
  });

  test("UDP_CHECK: matching reply with wildcards, mismatch, silence without and with require_reply, port unreachable", async () => {
    await timeline;
    expectUp(10051, /matches/);
    expectDown(10053, /mismatch/);
    expectUp(10054, /no error/);
    expectDown(10055, /no reply/, SLOW);
    expectDown(10056, /ECONNREFUSED|UDP connection failed/, [0, 300]);
  });

  test("MISC_CHECK: exit 0, exit 1, misc_dynamic weight, misc_timeout kill", async () => {
    await timeline;
    expectUp(10061);
    expectDown(10065, /exited with status 1/);
    expectUp(10063);
    // exit 12 = weight 10, configured weight 3
    expect(of(10063).every((r) => r.weightDelta === 7)).toBe(true);
    expectDown(10064, /timed out/, [CT - 20, CT + 2500]);
  });

  test("PING_CHECK: echo reply, no host (connect_timeout)", async () => {
    await timeline;
    expectUp(10071, /echo reply \(ping socket\)/);
    expectDown(10073, /timeout/i, SLOW);
  });

  test("FILE_CHECK: value × weight; weight 0 makes a non-zero value DOWN", async () => {
    await timeline;
    const w = of(10082);
    expect(w[0]).toMatchObject({ first: true, up: true, weightDelta: 6 });
    const f = of(10081);
    expect(f[0]).toMatchObject({ first: true, up: true });
  });

  test("vipd genhash prints the body's MD5 over HTTP and over TLS with SNI", async () => {
    const main = resolve(import.meta.dir, "../../src/main.ts");
    const genhash = async (args: string[]) => {
      const p = Bun.spawn(["ip", "netns", "exec", lab.node("lb").ns, process.execPath, main, "genhash", ...args], { stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { out, err, code };
    };
    const want = md5(readFileSync(join(work, "web", "index.html"), "utf8"));
    const plain = await genhash(["-s", SRV, "-p", "8080", "-u", "/index.html"]);
    expect(plain).toMatchObject({ code: 0, out: `${want}\n` });
    const tls = await genhash(["-S", "-I", "-V", "sni.test", "-s", SRV, "-p", "8443", "-u", "/index.html", "-v"]);
    expect(tls.code).toBe(0);
    expect(tls.out).toContain("HTTP Header Ascii Buffer");
    expect(tls.out.trim().split("\n").at(-1)).toBe(want);
    const refused = await genhash(["-s", SRV, "-p", "7", "-u", "/"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("ECONNREFUSED");
  }, 20_000);

  // This driver runs no BFD sessions (test/netns/bfd.test.ts and the VM's bfd-check suite do):
  // a BFD_CHECK whose session feeds no checker is skipped, as keepalived's "not configured".
  test("BFD_CHECK without a session feeding checkers is skipped and does not fail the server", async () => {
    await timeline;
    const b = of(10091);
    expect(b.length).toBe(1);
    expect(b[0]).toMatchObject({ up: true, ok: true });
    expect(b[0]!.detail).toBe("BFD_CHECK - BFD bfd1 not configured - skipping checker");
  });
});
