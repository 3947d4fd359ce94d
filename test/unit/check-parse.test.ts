/** Checker parsing without I/O: HTTP responses, status ranges, regex offsets, UDP patterns, DNS, SMTP, MISC and FILE rules. */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { buildDnsQuery, judgeDnsReply } from "../../src/check/dns.ts";
import { fileCheckStatus } from "../../src/check/file.ts";
import {
  HttpResponseReader, buildHttpRequest, extractContentLength, extractStatusCode, judgeResponse, regexFlags, regexMatches, statusPredicate, type UrlSpec,
} from "../../src/check/http-response.ts";
import { httpCheckSpec } from "../../src/check/http.ts";
import { miscOutcome } from "../../src/check/misc.ts";
import { dumpBuffer } from "../../src/cli/genhash.ts";
import { smtpStatus } from "../../src/check/smtp.ts";
import { parseHex, udpReplyMatches } from "../../src/check/udp.ts";

const md5 = (s: string | Uint8Array) => createHash("md5").update(s).digest("hex");
const enc = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` to a reader in pieces of `size` bytes. */
function read(text: string, size = 7): HttpResponseReader {
  const r = new HttpResponseReader();
  const b = Buffer.from(text, "latin1");
  for (let i = 0; i < b.length; i += size) r.push(new Uint8Array(b.subarray(i, i + size)));
  return r;
}

const url = (o: Partial<UrlSpec> = {}): UrlSpec => ({ path: "/", statusOk: statusPredicate(undefined), regexNoMatch: false, regexMinOffset: 0, ...o });

describe("HTTP request", () => {
  test("keepalived's request template: protocol, Connection: close, Host rules", () => {
    expect(buildHttpRequest({ path: "/x", protocol: "1.0", ip: "192.0.2.1", port: 80 })).toBe("GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:80\r\n\r\n");
    expect(buildHttpRequest({ path: "/", protocol: "1.0C", ip: "192.0.2.1", port: 8080 })).toBe("GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 192.0.2.1:8080\r\n\r\n");
    expect(buildHttpRequest({ path: "/", protocol: "1.1", ip: "2001:db8::1", port: 443 })).toBe("GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: [2001:db8::1]:443\r\n\r\n");
    // a virtualhost replaces host and port
    expect(buildHttpRequest({ path: "/", protocol: "1.1", ip: "2001:db8::1", port: 443, vhost: "www.example.com" })).toContain("\r\nHost: www.example.com\r\n\r\n");
  });

  test("url virtualhost over checker over real_server/virtual_server; SNI from sni_name or virtualhost", () => {
    const spec = httpCheckSpec("SSL_GET", { virtualhost: "chk.test", enable_sni: true, url: [{ path: "/a", virtualhost: "url.test" }, { path: "/b" }] }, "rs.test");
    expect(spec.virtualhost).toBe("chk.test");
    expect(spec.sni).toBe("chk.test");
    expect(spec.urls[0]!.virtualhost).toBe("url.test");
    expect(httpCheckSpec("SSL_GET", { url: [{ path: "/" }] }, "rs.test")).toMatchObject({ virtualhost: "rs.test", ssl: true });
    expect(httpCheckSpec("SSL_GET", { url: [{ path: "/" }] }, "rs.test").sni).toBeUndefined(); // enable_sni off
    expect(httpCheckSpec("SSL_GET", { enable_sni: true, sni_name: "sni.test", url: [{ path: "/" }] }, undefined).sni).toBe("sni.test");
    const problems: string[] = [];
    expect(httpCheckSpec("HTTP_GET", { url: [{ digest: "00" }, { path: "/" }], http_protocol: "1.0C" }, undefined, problems)).toMatchObject({ protocol: "1.0C", ssl: false });
    expect(problems).toEqual(["HTTP/SSL_GET checker url has no path - ignoring"]);
  });
});

describe("HTTP response", () => {
  test("status line: keepalived's extract_status_code", () => {
    expect(extractStatusCode("HTTP/1.1 200 OK")).toBe(200);
    expect(extractStatusCode("HTTP/1.0 404 Not Found")).toBe(404);
    expect(extractStatusCode("HTTP/1.1 200")).toBe(0); // no space after the code: keepalived reads 0
    expect(extractStatusCode("HTTP/1.1 20x OK")).toBe(0);
    expect(extractStatusCode("garbage")).toBe(0);
  });

  test("Content-Length, case-insensitive, only a well-formed number", () => {
    expect(extractContentLength("HTTP/1.1 200 OK\r\nContent-Length: 12")).toBe(12);
    expect(extractContentLength("HTTP/1.1 200 OK\r\ncontent-length:5\r\nX: y")).toBe(5);
    expect(extractContentLength("HTTP/1.1 200 OK\r\nContent-Length: 5x")).toBeUndefined();
    expect(extractContentLength("HTTP/1.1 200 OK")).toBeUndefined();
  });

  test("headers split across chunks; digest of the body only", () => {
    const body = "hello world\n".repeat(50);
    const r = read(`HTTP/1.0 200 OK\r\nServer: t\r\n\r\n${body}`, 5);
    expect(r.complete).toBe(true);
    expect(r.status).toBe(200);
    expect(r.bodyBytes).toBe(body.length);
    expect(r.digest()).toBe(md5(body));
    expect(r.digest()).toBe(md5(body)); // stable on a second call
  });

  test("the digest stops at Content-Length (extra bytes are not hashed); a mismatch is only a note", () => {
    const r = read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
    expect(r.digest()).toBe(md5("hello"));
    const j = judgeResponse(url({ digest: md5("hello") }), r);
    expect(j.ok).toBe(true);
    expect(j.note).toContain("content_length (5) does not match received bytes (10)");
  });

  test("chunked bodies are hashed raw, as keepalived reads until close without decoding", () => {
    const raw = "5\r\nhello\r\n0\r\n\r\n";
    const r = read(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${raw}`);
    expect(r.digest()).toBe(md5(raw));
    expect(r.digest()).not.toBe(md5("hello"));
  });

  test("binary bodies: digest over bytes, not text", () => {
    const bytes = new Uint8Array(300).map((_, i) => (i * 7) & 255);
    const r = new HttpResponseReader();
    r.push(enc("HTTP/1.0 200 OK\r\n\r\n"));
    r.push(bytes.subarray(0, 100));
    r.push(bytes.subarray(100));
    expect(r.digest()).toBe(md5(bytes));
  });

  test("verdicts: no data, status outside ranges, wrong digest, regex", () => {
    expect(judgeResponse(url(), read("")).detail).toBe("Read, no data received");
    expect(judgeResponse(url(), read("HTTP/1.0 200 OK\r\nno end of headers")).ok).toBe(false);
    expect(judgeResponse(url(), read("HTTP/1.0 500 Oops\r\n\r\n"))).toMatchObject({ ok: false, detail: "HTTP status code error (500)" });
    expect(judgeResponse(url(), read("HTTP/1.0 204 No Content\r\n\r\n")).ok).toBe(true);
    expect(judgeResponse(url({ statusOk: statusPredicate(["500"]) }), read("HTTP/1.0 500 Oops\r\n\r\n")).ok).toBe(true);
    const wrong = judgeResponse(url({ digest: md5("other") }), read("HTTP/1.0 200 OK\r\n\r\nbody"));
    expect(wrong.ok).toBe(false);
    expect(wrong.detail).toContain("MD5 digest error");
    expect(judgeResponse(url({ digest: md5("body").toUpperCase() }), read("HTTP/1.0 200 OK\r\n\r\nbody")).detail).toBe("MD5 digest");
    expect(judgeResponse(url({ regex: /st[a-z]+s: ok/ }), read("HTTP/1.0 200 OK\r\n\r\nstatus: ok")).ok).toBe(true);
    expect(judgeResponse(url({ regex: /status: ok/ }), read("HTTP/1.0 200 OK\r\n\r\nstatus: bad")).detail).toBe("Regex match failed");
    expect(judgeResponse(url({ regex: /error/, regexNoMatch: true }), read("HTTP/1.0 200 OK\r\n\r\nall fine")).ok).toBe(true);
    expect(judgeResponse(url({ regex: /error/, regexNoMatch: true }), read("HTTP/1.0 200 OK\r\n\r\nan error")).ok).toBe(false);
    // the status is checked before the digest
    expect(judgeResponse(url({ digest: md5("x") }), read("HTTP/1.0 503 No\r\n\r\nx")).detail).toContain("status code");
  });
});

describe("status_code", () => {
  test("codes and ranges; default 200-299; invalid words skipped", () => {
    const p = statusPredicate(["200", "300-302", "404"]);
    expect([200, 201, 300, 302, 303, 404, 405].map(p)).toEqual([true, false, true, true, false, true, false]);
    const d = statusPredicate(undefined);
    expect([199, 200, 299, 300].map(d)).toEqual([false, true, true, false]);
    const bad: string[] = [];
    const q = statusPredicate(["99", "600", "302-301", "418"], (w) => bad.push(w));
    expect(bad).toEqual(["99", "600", "302-301"]);
    expect(q(418)).toBe(true);
    expect(q(200)).toBe(false);
    // only invalid words: the default applies
    expect(statusPredicate(["abc"], () => {})(200)).toBe(true);
  });
});

describe("regex", () => {
  test("min/max offsets bound where a match may start", () => {
    const body = "aaa OK bbb OK";
    expect(regexMatches(/OK/, body, 0)).toBe(true);
    expect(regexMatches(/OK/, body, 5)).toBe(true); // the second OK at 11
    expect(regexMatches(/OK/, body, 12)).toBe(false);
    expect(regexMatches(/OK/, body, 0, 4)).toBe(true);
    expect(regexMatches(/OK/, body, 0, 3)).toBe(false);
    expect(regexMatches(/OK/, body, 5, 10)).toBe(false);
    expect(regexMatches(/OK/, body, 5, 11)).toBe(true);
    expect(regexMatches(/^aaa/m, body, 0)).toBe(true);
  });

  test("PCRE2 option names map to flags; others are reported", () => {
    expect(regexFlags(["caseless", "multiline", "dotall"])).toEqual({ flags: "ims", unsupported: [] });
    expect(regexFlags(["ungreedy", "caseless"]).unsupported).toEqual(["ungreedy"]);
    const spec = httpCheckSpec("HTTP_GET", { url: [{ path: "/", regex: "hello", regex_options: ["caseless"], regex_min_offset: 2, regex_max_offset: 1 }] }, undefined, []);
    expect(spec.urls[0]!.regex!.flags).toBe("i");
    // min > max: both offsets dropped, as keepalived
    expect(spec.urls[0]!.regexMinOffset).toBe(0);
    expect(spec.urls[0]!.regexMaxOffset).toBeUndefined();
  });
});

describe("UDP_CHECK patterns", () => {
  test("hex with spaces, single nibbles and X wildcards (read_hex_str)", () => {
    expect([...parseHex("0a0B ff", false)!.data]).toEqual([0x0a, 0x0b, 0xff]);
    expect([...parseHex("a b", false)!.data]).toEqual([0x0a, 0x0b]);
    expect(parseHex("0x12", false)).toBeUndefined(); // x not allowed in a payload
    expect(parseHex("", true)).toBeUndefined();
    const p = parseHex("12xX 3x", true)!;
    expect([...p.data]).toEqual([0x12, 0x00, 0x30]);
    expect([...p.mask]).toEqual([0x00, 0xff, 0x0f]);
  });

  test("prefix match with wildcards and length bounds (check_udp_reply)", () => {
    const p = parseHex("deadXXef", true)!;
    expect(udpReplyMatches(Uint8Array.of(0xde, 0xad, 0x12, 0xef, 0x99), p, 0, 255)).toBe(true);
    expect(udpReplyMatches(Uint8Array.of(0xde, 0xad, 0x12, 0xee), p, 0, 255)).toBe(false);
    expect(udpReplyMatches(Uint8Array.of(0xde, 0xad), p, 0, 255)).toBe(true); // only the shorter length is compared
    expect(udpReplyMatches(Uint8Array.of(0xde, 0xad), p, 3, 255)).toBe(false);
    expect(udpReplyMatches(new Uint8Array(300).fill(0xde), parseHex("de", true)!, 0, 255)).toBe(false);
    const nib = parseHex("Xf", true)!;
    expect(udpReplyMatches(Uint8Array.of(0x3f), nib, 0, 255)).toBe(true);
    expect(udpReplyMatches(Uint8Array.of(0x3e), nib, 0, 255)).toBe(false);
  });
});

describe("DNS_CHECK", () => {
  test("query: header with RD, QNAME labels, type and class IN", () => {
    const q = buildDnsQuery(0x1234, "example.com", "A");
    expect([...q.subarray(0, 12)]).toEqual([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.from(q.subarray(12)).toString("hex")).toBe("076578616d706c6503636f6d00" + "0001" + "0001");
    expect(Buffer.from(buildDnsQuery(1, "example.com.", "MX").subarray(12)).toString("hex")).toBe("076578616d706c6503636f6d00000f0001");
    expect(Buffer.from(buildDnsQuery(1, ".", "SOA").subarray(12)).toString("hex")).toBe("0000060001");
  });

  test("reply: our ID, QR set and RCODE 0; others ignored or failed", () => {
    const reply = (id: number, flags: number) => Uint8Array.of(id >> 8, id & 255, flags >> 8, flags & 255, 0, 1, 0, 0, 0, 0, 0, 0);
    expect(judgeDnsReply(7, reply(7, 0x8180))).toMatchObject({ ok: true });
    expect(judgeDnsReply(7, reply(8, 0x8180))).toBe("ignore");
    expect(judgeDnsReply(7, reply(7, 0x0100))).toBe("ignore"); // a query, not a response
    expect(judgeDnsReply(7, reply(7, 0x8183))).toMatchObject({ ok: false, detail: "read error occurred. (rcode = 3)" });
    expect(judgeDnsReply(7, reply(7, 0x8180).subarray(0, 11))).toBe("ignore");
  });
});

describe("SMTP, MISC and FILE rules", () => {
  test("SMTP status: exactly three digits then a space or the end", () => {
    expect(smtpStatus("220 mail.example ESMTP\r")).toBe(220);
    expect(smtpStatus("250\r")).toBe(250);
    expect(smtpStatus("220-multi line")).toBe(-1);
    expect(smtpStatus("2200 x")).toBe(-1);
  });

  test("MISC exit codes, with and without misc_dynamic", () => {
    expect(miscOutcome(0, false, 5)).toMatchObject({ ok: true });
    expect(miscOutcome(0, false, 5).weightDelta).toBeUndefined();
    expect(miscOutcome(1, false, 5).ok).toBe(false);
    expect(miscOutcome(2, false, 5).ok).toBe(false);
    expect(miscOutcome(1, true, 5).ok).toBe(false);
    expect(miscOutcome(0, true, 5)).toMatchObject({ ok: true, weightDelta: 0 });
    // exit 12 = weight 10, i.e. +5 over the configured 5
    expect(miscOutcome(12, true, 5)).toMatchObject({ ok: true, weightDelta: 5 });
    expect(miscOutcome(2, true, 5)).toMatchObject({ ok: true, weightDelta: -5 });
  });

  test("FILE_CHECK: weight 0 means non-zero is down (reverse: zero is down); else value × weight", () => {
    expect(fileCheckStatus(0, 0, false)).toEqual({ up: true, weightDelta: 0 });
    expect(fileCheckStatus(3, 0, false).up).toBe(false);
    expect(fileCheckStatus(0, 0, true).up).toBe(false);
    expect(fileCheckStatus(3, 0, true).up).toBe(true);
    expect(fileCheckStatus(4, 2, false)).toEqual({ up: true, weightDelta: 8 });
    expect(fileCheckStatus(4, 2, true)).toEqual({ up: true, weightDelta: -8 });
    expect(fileCheckStatus(-2147483648, 1, false).up).toBe(false);
    expect(fileCheckStatus(-3000000000, 1, false).up).toBe(false);
  });
});

describe("genhash", () => {
  test("dump_buffer layout: decimal offset, two hex groups of 8, printable characters", () => {
    const d = dumpBuffer(enc("HTTP/1.0 200 OK\r\nServer"));
    expect(d).toBe(
      "0000  48 54 54 50 2f 31 2e 30 - 20 32 30 30 20 4f 4b 0d   HTTP/1.0 200 OK.\n" +
      // keepalived prints the " -" separator in the padding too
      "0016  0a 53 65 72 76 65 72    -                           .Server         \n",
    );
  });
});
