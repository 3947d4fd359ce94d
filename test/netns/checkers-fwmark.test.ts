/**
 * Checker socket options that only a libc socket can carry, against real servers:
 *
 * - fwmark: the checking node reaches the servers' address (203.0.113.10, 2001:db8:100::10)
 *   only through routing table 100, selected by `ip rule fwmark 7`. A check is up only if
 *   SO_MARK 7 really was on its socket; the same check without fwmark, or with mark 8, finds
 *   no route. An nft counter on `meta mark 7` confirms the marked packets left the node.
 * - the global SSL { } block: openssl s_server -Verify 1 demands a client certificate signed by
 *   its CA; SSL_GET is up with the block (encrypted key + password) and down without it. The
 *   server's own certificate is self-signed and not from that CA: as keepalived, the check does
 *   not verify the server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startVipd, waitFor } from "./daemon.ts";
import { createLab, run, type Lab, waitListening } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const PYTHON = "/usr/bin/python3";
const have = (cmd: string[]) => ROOT && Bun.spawnSync(cmd, { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
const TOOLS = ROOT && existsSync(PYTHON) && have(["openssl", "version"]) && have(["nft", "--version"]);
const DRIVER = resolve(import.meta.dir, "check-once-driver.ts");

const SRV4 = "203.0.113.10", SRV6 = "2001:db8:100::10";

/** tcp-smtp: a minimal SMTP dialogue; udp-echo; udp-dns: answers any query with QR set, RCODE 0. */
const AUX_PY = `
import socket, sys, threading
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
if mode == "tcp-smtp":
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(64)
    def serve(c):
        f = c.makefile("rb")
        c.sendall(b"220 test ESMTP\\r\\n")
        for line in f:
            if line.upper().startswith(b"HELO"): c.sendall(b"250 hello\\r\\n")
            elif line.upper().startswith(b"QUIT"):
                c.sendall(b"221 bye\\r\\n"); break
        c.close()
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((host, port))
    while True:
        d, a = s.recvfrom(65535)
        if mode == "udp-echo": s.sendto(d, a)
        elif len(d) >= 12: s.sendto(d[:2] + bytes([d[2] | 0x80, 0]) + d[4:], a)
`;

interface Line {
  vsPort: number;
  type: string;
  ok: boolean;
  detail: string;
  problems: string[];
}

describe.skipIf(!TOOLS)("checker sockets: fwmark (SO_MARK) and the SSL client context", () => {
  let lab: Lab;
  let work: string;
  const procs: Bun.Subprocess[] = [];

  const start = (cmd: string[], cwd?: string) =>
    procs.push(Bun.spawn(["ip", "netns", "exec", lab.node("srv").ns, ...cmd], { stdout: "ignore", stderr: "ignore", stdin: "ignore", ...(cwd ? { cwd } : {}) }));


  /** Runs every checker of `conf` once in the checking node; results by virtual server port. */
  async function checkOnce(name: string, conf: string): Promise<Map<number, Line>> {
    const path = join(work, name);
    writeFileSync(path, conf);
    const p = Bun.spawn(["ip", "netns", "exec", lab.node("lb").ns, process.execPath, DRIVER, path], { stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(killer);
    const lines = out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line & { configErrors?: string[] });
    if (lines.some((l) => l.configErrors)) throw new Error(`config errors: ${out}`);
    if (!lines.length) throw new Error(`driver printed nothing; stderr: ${err}`);
    return new Map(lines.map((l) => [l.vsPort, l]));
  }

  const vs = (port: number, rsIp: string, rsPort: number, checker: string, proto = "TCP") => `
virtual_server ${rsIp.includes(":") ? "2001:db8::200" : "192.0.2.200"} ${port} {
  protocol ${proto}
  delay_loop 1
  real_server ${rsIp} ${rsPort} {
    ${checker}
  }
}`;

  beforeAll(async () => {
    lab = createLab({ purpose: "ckfw", nodes: ["lb", "srv"], v4: "192.0.2.0/24", v6: true });
    const srv = lab.node("srv"), lb = lab.node("lb");
    lab.exec("srv", ["ip", "addr", "add", `${SRV4}/32`, "dev", "lo"]);
    lab.exec("srv", ["ip", "-6", "addr", "add", `${SRV6}/128`, "dev", "lo"]);
    // the only way from lb to the servers: table 100, for packets marked 7
    lab.exec("lb", ["ip", "route", "add", `${SRV4}/32`, "via", srv.v4!, "table", "100"]);
    lab.exec("lb", ["ip", "-6", "route", "add", `${SRV6}/128`, "via", srv.v6!, "table", "100"]);
    lab.exec("lb", ["ip", "rule", "add", "fwmark", "7", "table", "100"]);
    lab.exec("lb", ["ip", "-6", "rule", "add", "fwmark", "7", "table", "100"]);
    // the servers answer on their connected route to lb
    void lb;
    lab.exec("lb", ["nft", "add table inet ckfw; add chain inet ckfw out { type filter hook output priority 0 ; } ; add rule inet ckfw out meta mark 7 ip daddr 203.0.113.10 counter ; add rule inet ckfw out meta mark 7 ip6 daddr 2001:db8:100::10 counter"]);

    work = mkdtempSync(join(tmpdir(), "vipd-ckfw-"));
    mkdirSync(join(work, "web"));
    writeFileSync(join(work, "web", "index.html"), "<html>fwmark test</html>\n");
    writeFileSync(join(work, "aux.py"), AUX_PY);
    const ssl = (args: string[]) => run(["openssl", ...args]);
    // a CA, a client certificate it signs (key encrypted with a password), and an unrelated self-signed server certificate
    ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(work, "ca.key"), "-out", join(work, "ca.pem"), "-days", "2", "-subj", "/CN=test CA"]);
    ssl(["req", "-newkey", "rsa:2048", "-passout", "pass:s3cret", "-keyout", join(work, "client.key"), "-out", join(work, "client.csr"), "-subj", "/CN=checker"]);
    ssl(["x509", "-req", "-in", join(work, "client.csr"), "-CA", join(work, "ca.pem"), "-CAkey", join(work, "ca.key"), "-CAcreateserial", "-out", join(work, "client.pem"), "-days", "2"]);
    ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(work, "srv.key"), "-out", join(work, "srv.pem"), "-days", "2", "-subj", "/CN=server"]);

    start([PYTHON, "-m", "http.server", "8080", "--bind", "::", "--directory", join(work, "web")]);
    start(["openssl", "s_server", "-accept", `${SRV4}:8443`, "-cert", join(work, "srv.pem"), "-key", join(work, "srv.key"),
      "-Verify", "1", "-CAfile", join(work, "ca.pem"), "-WWW", "-quiet"], join(work, "web"));
    start([PYTHON, join(work, "aux.py"), "tcp-smtp", SRV4, "2525"]);
    start([PYTHON, join(work, "aux.py"), "udp-echo", SRV4, "9000"]);
    start([PYTHON, join(work, "aux.py"), "udp-dns", SRV4, "5353"]);
    await waitListening(lab, "srv", [8080, 8443, 2525], [9000, 5353]);
  }, 60_000);

  afterAll(() => {
    for (const p of procs) p.kill("SIGKILL");
    lab?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const sslBlock = (w: string) => `SSL {\n  password s3cret\n  ca ${w}/ca.pem\n  certificate ${w}/client.pem\n  key ${w}/client.key\n}\n`;
  const sslGet = "SSL_GET { fwmark 7\n connect_timeout 2\n url { path /index.html\n status_code 200 } }";

  test("every connection checker routes by its fwmark; SSL_GET presents the SSL block's client certificate", async () => {
    const conf = sslBlock(work) + [
      vs(1, SRV4, 8080, "TCP_CHECK { fwmark 7\n connect_timeout 2 }"),
      vs(2, SRV4, 8080, "TCP_CHECK { connect_timeout 2 }"),
      vs(3, SRV4, 8080, "TCP_CHECK { fwmark 8\n connect_timeout 2 }"),
      vs(4, SRV6, 8080, "TCP_CHECK { fwmark 7\n connect_timeout 2 }"),
      vs(5, SRV6, 8080, "TCP_CHECK { connect_timeout 2 }"),
      vs(11, SRV4, 8080, "HTTP_GET { fwmark 7\n connect_timeout 2\n url { path /index.html\n status_code 200 } }"),
      vs(12, SRV4, 8080, "HTTP_GET { connect_timeout 2\n url { path /index.html\n status_code 200 } }"),
      vs(21, SRV4, 8443, sslGet),
      vs(31, SRV4, 2525, "SMTP_CHECK { fwmark 7\n connect_timeout 2 }"),
      vs(32, SRV4, 2525, "SMTP_CHECK { connect_timeout 2 }"),
      vs(41, SRV4, 9000, "UDP_CHECK { fwmark 7\n connect_timeout 2\n require_reply }", "UDP"),
      vs(42, SRV4, 9000, "UDP_CHECK { connect_timeout 2\n require_reply }", "UDP"),
      vs(51, SRV4, 5353, "DNS_CHECK { fwmark 7\n connect_timeout 2\n type A\n name example.test }", "UDP"),
      vs(52, SRV4, 5353, "DNS_CHECK { connect_timeout 2\n type A\n name example.test }", "UDP"),
    ].join("\n");
    const r = await checkOnce("fwmark.conf", conf);
    const up = (port: number) => expect({ port, ok: r.get(port)?.ok, detail: r.get(port)?.detail }).toMatchObject({ port, ok: true });
    const down = (port: number, re: RegExp) => expect({ port, ok: r.get(port)?.ok, detail: r.get(port)?.detail }).toMatchObject({ port, ok: false, detail: expect.stringMatching(re) });
    for (const p of [1, 4, 11, 21, 31, 41, 51]) up(p);
    // without the mark (or with another) there is no route: the kernel refuses the connect at once
    for (const p of [2, 3, 5, 12, 32]) down(p, /ENETUNREACH/);
    for (const p of [42, 52]) down(p, /ENETUNREACH|UDP connection failed/);
    // the factory no longer warns that fwmark is ignored
    for (const l of r.values()) expect(l.problems.join(" ")).not.toContain("fwmark");
    // the marked packets really left with mark 7
    const counters = [...lab.exec("lb", ["nft", "list", "chain", "inet", "ckfw", "out"]).stdout.matchAll(/packets (\d+)/g)].map((m) => Number(m[1]));
    expect(counters.length).toBe(2);
    expect(counters[0]!).toBeGreaterThan(0);
    expect(counters[1]!).toBeGreaterThan(0);
  }, 60_000);

  test("the compiled daemon: SSL_GET with the SSL block (and fwmark 7) is up in vipd status; without the block it is down", async () => {
    // no IPVS on this kernel: the checkers still run, and the status lists them (lvs.checkers)
    type Checker = { type: string; up: boolean; hasRun: boolean; detail?: string };
    const checkerOf = async (v: ReturnType<typeof startVipd>) => {
      const st = (await v.status().catch(() => undefined)) as { lvs?: { checkers: Checker[] } } | undefined;
      const c = st?.lvs?.checkers[0];
      return c?.hasRun ? c : undefined;
    };
    for (const [conf, up] of [[sslBlock(work) + vs(21, SRV4, 8443, sslGet), true], [vs(21, SRV4, 8443, sslGet), false]] as const) {
      const v = startVipd(lab.node("lb").ns, conf, { name: `vipd@lb-ssl-${up}` });
      try {
        const c = await waitFor(() => checkerOf(v), 20_000, () => `a checker report from vipd (ssl block ${up}):\n${v.lines.map((l) => l.line).join("\n")}`);
        expect({ type: c.type, up: c.up }).toEqual({ type: "SSL_GET", up });
      } finally {
        await v.stop();
      }
    }
  }, 60_000);

  test("SSL_GET without the SSL block is refused by a server demanding a client certificate", async () => {
    const r = await checkOnce("nossl.conf", vs(21, SRV4, 8443, sslGet));
    // TLS 1.3: the server's alert arrives after the client's side of the handshake, on the first read
    expect(r.get(21)).toMatchObject({ ok: false, detail: expect.stringMatching(/EPROTO|SSL|ECONNRESET/) });
  }, 30_000);

  test("a wrong key password or a missing certificate file keeps SSL_GET down with keepalived's words", async () => {
    const wrongPw = sslBlock(work).replace("s3cret", "wrong");
    const r1 = await checkOnce("wrongpw.conf", wrongPw + vs(21, SRV4, 8443, sslGet));
    expect(r1.get(21)).toMatchObject({ ok: false, detail: expect.stringMatching(/BAD_DECRYPT/) });
    const missing = sslBlock(work).replace("client.pem", "nonexistent.pem");
    const r2 = await checkOnce("missing.conf", missing + vs(21, SRV4, 8443, sslGet));
    expect(r2.get(21)).toMatchObject({ ok: false, detail: expect.stringContaining("Cant load certificate file") });
  }, 30_000);
});
