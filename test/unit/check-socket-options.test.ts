/**
 * Checker socket options without the network: the SSL { } block read into SSL_GET's client
 * context, the factory's fwmark/SSL plumbing, and libc socket set-up failures reported in
 * keepalived's words before any packet could leave (bind/bind_if errors stop before connect()).
 */
import { describe, expect, test } from "bun:test";
import { buildChecker } from "../../src/check/factory.ts";
import { HttpChecker, loadTlsClientContext } from "../../src/check/http.ts";
import { probeTcp } from "../../src/check/connect.ts";
import { udpExchange } from "../../src/check/udp-socket.ts";
import { loadConfigText } from "../../src/config/load.ts";

const files: Record<string, string> = { "/c.pem": "CERT", "/k.pem": "KEY", "/ca.pem": "CA" };
const reader = (p: string) => {
  const v = files[p];
  if (v === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
  return v;
};

describe("the SSL { } block", () => {
  test("no block: no client context", () => {
    expect(loadTlsClientContext(undefined, reader)).toBeUndefined();
  });

  test("certificate, key, ca are read; password is the key's passphrase", () => {
    expect(loadTlsClientContext({ certificate: "/c.pem", key: "/k.pem", ca: "/ca.pem", password: "pw" }, reader))
      .toEqual({ cert: "CERT", key: "KEY", ca: "CA", passphrase: "pw" });
    expect(loadTlsClientContext({ ca: "/ca.pem" }, reader)).toEqual({ ca: "CA" });
  });

  test("an unreadable file is keepalived's 'Cant load … file' error", () => {
    expect(loadTlsClientContext({ certificate: "/nope.pem" }, reader)).toEqual({ error: "SSL error : Cant load certificate file /nope.pem: ENOENT" });
    expect(loadTlsClientContext({ certificate: "/c.pem", key: "/nokey.pem" }, reader)).toEqual({ error: "SSL error : Cant load key file /nokey.pem: ENOENT" });
    expect(loadTlsClientContext({ ca: "/noca.pem" }, reader)).toEqual({ error: "SSL error : Cant load CA file /noca.pem: ENOENT" });
  });
});

const conf = (checker: string) => {
  const { model, diagnostics } = loadConfigText(`virtual_server 192.0.2.200 80 {\n real_server 192.0.2.1 80 {\n ${checker}\n }\n}\n`, "test.conf");
  expect(diagnostics.items.filter((d) => d.severity === "error")).toEqual([]);
  const vs = model.virtual_server[0]!;
  return { vs, rs: vs.real_servers[0]! };
};

describe("factory plumbing", () => {
  test("fwmark reaches the checker's target with no 'ignored' warning; PING_CHECK says it does not apply", () => {
    for (const type of ["TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "UDP_CHECK", "DNS_CHECK"]) {
      const { vs, rs } = conf(`${type} { fwmark 7 }`);
      const b = buildChecker(vs, rs, 0);
      expect(b.kind).toBe("polled");
      if (b.kind !== "polled") continue;
      expect(b.problems).toEqual([]);
      expect((b.checker as unknown as { target: { fwmark?: number } }).target.fwmark).toBe(7);
    }
    const { vs, rs } = conf("PING_CHECK { fwmark 7 }");
    expect(buildChecker(vs, rs, 0).problems.join(" ")).toContain("fwmark is not applied");
  });

  test("SSL_GET takes the client context; a context that failed to load keeps SSL_GET down, HTTP_GET unaffected", () => {
    const ssl = conf("SSL_GET { url { path / } }");
    const ctx = { cert: "CERT", key: "KEY" };
    const b = buildChecker(ssl.vs, ssl.rs, 0, { tls: ctx });
    expect(b.kind === "polled" && (b.checker as HttpChecker).spec.tlsContext).toEqual(ctx);
    const bad = buildChecker(ssl.vs, ssl.rs, 0, { tls: { error: "SSL error : Cant load key file /k: ENOENT" } });
    expect(bad).toMatchObject({ kind: "fixed", up: false, detail: "SSL error : Cant load key file /k: ENOENT" });
    const http = conf("HTTP_GET { url { path / } }");
    const h = buildChecker(http.vs, http.rs, 0, { tls: { error: "x" } });
    expect(h.kind === "polled" && (h.checker as HttpChecker).spec.tlsContext).toBeUndefined();
  });
});

describe("libc socket set-up failures (no packet leaves: they fail before connect)", () => {
  test("TCP: bindto of the other family, an unknown bind_if", async () => {
    expect(await probeTcp({ host: "192.0.2.1", port: 80, bindto: "2001:db8::1", timeoutMs: 1000 })).toEqual({ ok: false, detail: "Checker bind failed: EAFNOSUPPORT" });
    // ENODEV as root; without CAP_NET_RAW SO_BINDTODEVICE is refused first
    expect(await probeTcp({ host: "192.0.2.1", port: 80, bindIf: "nosuchif0", timeoutMs: 1000 })).toMatchObject({ ok: false, detail: expect.stringMatching(/^Checker can't bind to device nosuchif0: (ENODEV|EPERM)$/) });
  });

  test("UDP: the same failures in the same words", async () => {
    const r = await udpExchange({ host: "192.0.2.1", port: 53, bindIf: "nosuchif0", timeoutMs: 1000 }, new Uint8Array(4), () => "ignore");
    expect(r).toMatchObject({ kind: "error", detail: expect.stringMatching(/^Checker can't bind to device nosuchif0: (ENODEV|EPERM)$/) });
    const r2 = await udpExchange({ host: "192.0.2.1", port: 53, bindto: "2001:db8::1", timeoutMs: 1000 }, new Uint8Array(4), () => "ignore");
    expect(r2).toEqual({ kind: "error", detail: "Checker bind failed: EAFNOSUPPORT" });
  });
});
