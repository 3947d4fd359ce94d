import { afterEach, describe, expect, test } from "bun:test";
import {
  ReplyParser,
  SmtpQueue,
  buildMessage,
  dotStuff,
  envelopeAddress,
  headerAddress,
  rfc2822Date,
  sendMail,
  smtpSettingsFromGlobal,
  type SmtpSettings,
} from "../../src/daemon/smtp.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import {
  VrrpAlerts,
  alertGlobalsFromDoc,
  checkerEmail,
  checkerMessage,
  decideVrrpAlert,
  groupEmail,
  instanceEmail,
  realServerAlertEnabled,
  realServerRemovedEmail,
  shouldMailChecker,
  virtualServerAlertEnabled,
  virtualServerEmail,
  vrrpAlertEnabled,
  type AlertGlobals,
} from "../../src/daemon/alerts.ts";

// --- a scriptable fake SMTP server on 127.0.0.1 -------------------------------------------------

interface FakeOptions {
  /** Banner reply; null = never send one. */
  banner?: string | null;
  /** Reply for a command line (without CRLF); null = never answer; undefined = default. */
  reply?: (cmd: string) => string | null | undefined;
  /** Write replies one byte at a time with this delay (ms) between bytes. */
  trickleMs?: number;
  /** Delay before every reply. */
  delayMs?: number;
  /** Listening address (default 127.0.0.1). */
  hostname?: string;
}

interface Conn {
  commands: string[];
  data: string;
  closed: boolean;
}

interface Fake {
  port: number;
  conns: Conn[];
  maxConcurrent: number;
  stop(): void;
}

const servers: Fake[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop();
});

function defaultReply(cmd: string): string {
  const verb = cmd.split(/[ :]/)[0]!.toUpperCase();
  if (verb === "HELO") return "250 fake.example.org";
  if (verb === "MAIL" || verb === "RCPT") return "250 OK";
  if (verb === "DATA") return "354 go ahead";
  if (verb === "QUIT") return "221 bye";
  return "500 what";
}

function fakeSmtp(o: FakeOptions = {}): Fake {
  const conns: Conn[] = [];
  let live = 0;
  const fake: Fake = { port: 0, conns, maxConcurrent: 0, stop: () => listener.stop(true) };
  type St = { conn: Conn; buf: string; inData: boolean; chain: Promise<void> };
  const respond = (sock: Bun.Socket<St>, text: string | null) => {
    if (text === null) return;
    const st = sock.data;
    st.chain = st.chain.then(async () => {
      if (o.delayMs) await Bun.sleep(o.delayMs);
      const out = `${text.replace(/\n/g, "\r\n")}\r\n`;
      if (o.trickleMs !== undefined) {
        for (const ch of out) {
          sock.write(ch);
          await Bun.sleep(o.trickleMs);
        }
      } else sock.write(out);
    });
  };
  const listener = Bun.listen<St>({
    hostname: o.hostname ?? "127.0.0.1",
    port: 0,
    socket: {
      open(sock) {
        const conn: Conn = { commands: [], data: "", closed: false };
        conns.push(conn);
        live++;
        fake.maxConcurrent = Math.max(fake.maxConcurrent, live);
        sock.data = { conn, buf: "", inData: false, chain: Promise.resolve() };
        respond(sock, o.banner === undefined ? "220 fake ESMTP" : o.banner);
      },
      data(sock, chunk) {
        const st = sock.data;
        st.buf += chunk.toString();
        for (;;) {
          if (st.inData) {
            const end = st.buf.indexOf("\r\n.\r\n");
            if (end < 0) return;
            st.conn.data = st.buf.slice(0, end + 2);
            st.buf = st.buf.slice(end + 5);
            st.inData = false;
            respond(sock, o.reply?.("<DATA-END>") ?? "250 queued");
            continue;
          }
          const nl = st.buf.indexOf("\r\n");
          if (nl < 0) return;
          const cmd = st.buf.slice(0, nl);
          st.buf = st.buf.slice(nl + 2);
          st.conn.commands.push(cmd);
          let r = o.reply?.(cmd);
          if (r === undefined) r = defaultReply(cmd);
          if (cmd === "DATA" && r !== null && r.startsWith("354")) st.inData = true;
          respond(sock, r);
          if (cmd === "QUIT") {
            void st.chain.then(() => sock.end());
          }
        }
      },
      close(sock) {
        sock.data.conn.closed = true;
        live--;
      },
    },
  });
  fake.port = listener.port;
  servers.push(fake);
  return fake;
}

function settings(port: number, extra: Partial<SmtpSettings> = {}): SmtpSettings {
  return {
    host: "127.0.0.1",
    port,
    heloName: "lb1.example.org",
    from: "vipd@lb1.example.org",
    to: ["ops@example.org", "Pager Duty <pager@example.org>"],
    timeoutMs: 2000,
    ...extra,
  };
}

function captureLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`I ${m}`), warn: (m) => lines.push(`W ${m}`), error: (m) => lines.push(`E ${m}`), debug: (m) => lines.push(`D ${m}`) };
}

/** Undoes dot-stuffing as a receiving server does. */
const unstuff = (data: string) =>
  data
    .split("\r\n")
    .map((l) => (l.startsWith("..") ? l.slice(1) : l))
    .join("\r\n");

const email = { subject: "[lb1] VRRP Instance VI_1 - Entering MASTER state", body: "=> VRRP Instance is now owning VRRP VIPs <=" };

// --- pure parts ---------------------------------------------------------------------------------

describe("addresses, dates, message", () => {
  test("envelope addresses strip display names", () => {
    expect(envelopeAddress("ops@example.org")).toBe("<ops@example.org>");
    expect(envelopeAddress("Pager Duty <pager@example.org>")).toBe("<pager@example.org>");
    expect(envelopeAddress('"Ops, Team" <ops@example.org>')).toBe("<ops@example.org>");
    expect(envelopeAddress("<x@example.org>")).toBe("<x@example.org>");
  });

  test("header addresses quote display names with specials (format_email_addr)", () => {
    expect(headerAddress("ops@example.org")).toBe("ops@example.org");
    expect(headerAddress("Pager Duty <p@example.org>")).toBe("Pager Duty <p@example.org>");
    expect(headerAddress("Ops, Team <o@example.org>")).toBe('"Ops, Team" <o@example.org>');
    expect(headerAddress('J. "Bob" Smith <b@example.org>')).toBe('"J. \\"Bob\\" Smith" <b@example.org>');
    expect(headerAddress('"Already, quoted" <q@example.org>')).toBe('"Already, quoted" <q@example.org>');
  });

  test("RFC 2822 date in local time with the numeric zone", () => {
    const d = new Date(2021, 2, 1, 9, 44, 8);
    const s = rfc2822Date(d);
    expect(s).toMatch(/^Mon, 01 Mar 2021 09:44:08 [+-]\d{4}$/);
    const off = -d.getTimezoneOffset();
    const zone = `${off >= 0 ? "+" : "-"}${String(Math.floor(Math.abs(off) / 60)).padStart(2, "0")}${String(Math.abs(off) % 60).padStart(2, "0")}`;
    expect(s.endsWith(zone)).toBe(true);
  });

  test("dot-stuffing and CRLF", () => {
    expect(dotStuff("a\n.b\n.\nc")).toBe("a\r\n..b\r\n..\r\nc");
    expect(dotStuff("x\r\ny")).toBe("x\r\ny");
  });

  test("message layout: keepalived's header order, To one per line, ends with CRLF.CRLF", () => {
    const m = buildMessage("a@b", ["x@y", "Z Z <z@y>"], { subject: "S", body: "B" }, new Date(2021, 0, 2, 3, 4, 5));
    const lines = m.split("\r\n");
    expect(lines[0]).toMatch(/^Date: Sat, 02 Jan 2021 03:04:05 [+-]\d{4}$/);
    expect(lines.slice(1, 7)).toEqual(["From: a@b", "Subject: S", "X-Mailer: vipd", "To: x@y,", " Z Z <z@y>", ""]);
    expect(m.endsWith("B\r\n\r\n.\r\n")).toBe(true);
  });

  test("reply parser: multi-line, bare code, split chunks, malformed", () => {
    const p = new ReplyParser();
    p.feed("250-first\r\n250-sec");
    expect(p.take()).toBeUndefined();
    p.feed("ond\r\n250 last\r\n220\r\n");
    expect(p.take()).toEqual({ code: 250, lines: ["first", "second", "last"] });
    expect(p.take()).toEqual({ code: 220, lines: [""] });
    expect(() => new ReplyParser().feed("hello there\r\n")).toThrow(/malformed/);
    expect(() => new ReplyParser().feed("x".repeat(5000))).toThrow(/longer/);
  });

  test("settings from global_defs with keepalived's defaults", () => {
    expect(smtpSettingsFromGlobal({ smtp_server: { host: "192.0.2.25" } })).toBeUndefined();
    expect(smtpSettingsFromGlobal({ notification_email: ["a@b"] })).toBeUndefined();
    const s = smtpSettingsFromGlobal({ smtp_server: { host: "mail.example.org" }, notification_email: ["a@b", "c@d"] }, { hostname: "lb1", user: "root" })!;
    expect(s).toEqual({ host: "mail.example.org", port: 25, heloName: "lb1", from: "root@lb1", to: ["a@b", "c@d"], timeoutMs: 30000 });
    const t = smtpSettingsFromGlobal(
      { smtp_server: { host: "192.0.2.25", port: 2525 }, notification_email: ["a@b"], notification_email_from: "ka@x", smtp_helo_name: "h", smtp_connect_timeout: 5 },
      { hostname: "lb1", user: "root" },
    )!;
    expect([t.port, t.from, t.heloName, t.timeoutMs]).toEqual([2525, "ka@x", "h", 5000]);
  });
});

// --- against the fake server --------------------------------------------------------------------

describe("sendMail against a fake server", () => {
  test("full dialogue: HELO, MAIL, one RCPT per address, DATA, message, QUIT", async () => {
    const srv = fakeSmtp();
    const r = await sendMail(settings(srv.port), email, { now: () => new Date(2021, 2, 1, 9, 44, 8) });
    expect(r.ok).toBe(true);
    expect(r.accepted).toEqual(["ops@example.org", "Pager Duty <pager@example.org>"]);
    const c = srv.conns[0]!;
    expect(c.commands).toEqual(["HELO lb1.example.org", "MAIL FROM:<vipd@lb1.example.org>", "RCPT TO:<ops@example.org>", "RCPT TO:<pager@example.org>", "DATA", "QUIT"]);
    expect(c.data).toContain(`Subject: ${email.subject}\r\n`);
    expect(c.data).toContain("From: vipd@lb1.example.org\r\n");
    expect(c.data).toContain("To: ops@example.org,\r\n Pager Duty <pager@example.org>\r\n");
    expect(c.data).toContain("X-Mailer: vipd\r\n");
    expect(c.data).toMatch(/^Date: Mon, 01 Mar 2021 09:44:08 [+-]\d{4}\r\n/);
    expect(c.data).toContain(`\r\n\r\n${email.body}\r\n`);
    await Bun.sleep(20);
    expect(c.closed).toBe(true);
  });

  test("multi-line replies, delivered a byte at a time", async () => {
    const srv = fakeSmtp({
      banner: "220-fake.example.org ESMTP\n220-no UCE\n220 ready",
      reply: (cmd) => (cmd.startsWith("HELO") ? "250-fake.example.org\n250-PIPELINING\n250 8BITMIME" : undefined),
      trickleMs: 0,
    });
    const r = await sendMail(settings(srv.port), email);
    expect(r.ok).toBe(true);
    // one command per reply: the continuation lines were not taken for separate replies
    expect(srv.conns[0]!.commands).toEqual(["HELO lb1.example.org", "MAIL FROM:<vipd@lb1.example.org>", "RCPT TO:<ops@example.org>", "RCPT TO:<pager@example.org>", "DATA", "QUIT"]);
  });

  test("dot-stuffing: lines starting with '.' survive the trip", async () => {
    const srv = fakeSmtp();
    const body = "first\n.hidden\n.\n..two\nlast";
    const r = await sendMail(settings(srv.port), { subject: "dots", body });
    expect(r.ok).toBe(true);
    const data = srv.conns[0]!.data;
    expect(data).toContain("\r\n..hidden\r\n..\r\n...two\r\n");
    const received = unstuff(data);
    expect(received).toContain("first\r\n.hidden\r\n.\r\n..two\r\nlast\r\n");
  });

  test("a server that never answers times out at the banner, within the timeout", async () => {
    const srv = fakeSmtp({ banner: null });
    const t0 = performance.now();
    const r = await sendMail(settings(srv.port, { timeoutMs: 300 }), email);
    const dt = performance.now() - t0;
    expect(r.ok).toBe(false);
    expect(r.stage).toBe("banner");
    expect(r.error).toContain("timeout");
    expect(dt).toBeGreaterThanOrEqual(290);
    expect(dt).toBeLessThan(1500);
    expect(srv.conns[0]!.commands).toEqual([]);
  });

  test("a server that stops answering mid-dialogue times out at that step", async () => {
    const srv = fakeSmtp({ reply: (cmd) => (cmd === "DATA" ? null : undefined) });
    const r = await sendMail(settings(srv.port, { timeoutMs: 300 }), email);
    expect(r.ok).toBe(false);
    expect(r.stage).toBe("DATA");
  });

  test("one rejected RCPT: the email still goes to the accepted recipient", async () => {
    const srv = fakeSmtp({ reply: (cmd) => (cmd.includes("pager@") ? "550 5.1.1 no such user" : undefined) });
    const r = await sendMail(settings(srv.port), email);
    expect(r.ok).toBe(true);
    expect(r.accepted).toEqual(["ops@example.org"]);
    expect(r.rejected).toEqual(["Pager Duty <pager@example.org>"]);
    expect(srv.conns[0]!.commands).toContain("DATA");
  });

  test("every RCPT rejected: no DATA, the failure names RCPT", async () => {
    const srv = fakeSmtp({ reply: (cmd) => (cmd.startsWith("RCPT") ? "554 relay denied" : undefined) });
    const r = await sendMail(settings(srv.port), email);
    expect(r.ok).toBe(false);
    expect(r.stage).toBe("RCPT");
    expect(r.rejected.length).toBe(2);
    await Bun.sleep(20);
    expect(srv.conns[0]!.commands).not.toContain("DATA");
    expect(srv.conns[0]!.commands).toContain("QUIT");
  });

  test("MAIL refused: the code is reported, QUIT sent", async () => {
    const srv = fakeSmtp({ reply: (cmd) => (cmd.startsWith("MAIL") ? "451 try later" : undefined) });
    const r = await sendMail(settings(srv.port), email);
    expect(r).toMatchObject({ ok: false, stage: "MAIL", code: 451 });
    expect(r.error).toContain("SMTP status code = 451");
    await Bun.sleep(20);
    expect(srv.conns[0]!.commands.at(-1)).toBe("QUIT");
  });

  test("connection refused fails fast at connect", async () => {
    const srv = fakeSmtp();
    const port = srv.port;
    srv.stop();
    const t0 = performance.now();
    const r = await sendMail(settings(port), email);
    expect(r.ok).toBe(false);
    expect(r.stage).toBe("connect");
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  test("a garbage banner fails without hanging", async () => {
    const srv = fakeSmtp({ banner: "HTTP/1.1 400 Bad Request" });
    const r = await sendMail(settings(srv.port), email);
    expect(r.ok).toBe(false);
    expect(r.stage).toBe("banner");
    expect(r.error).toContain("malformed");
  });

  test("host names are resolved (localhost)", async () => {
    // listen where "localhost" resolves first (127.0.0.1 or ::1, depending on the host)
    const addr = (await Bun.dns.lookup("localhost", {}))[0]!.address;
    const srv = fakeSmtp({ hostname: addr });
    const r = await sendMail(settings(srv.port, { host: "localhost" }), email);
    expect(r.ok).toBe(true);
    expect(srv.conns.length).toBe(1);
    const bad = await sendMail(settings(srv.port, { host: "no-such-host.invalid", timeoutMs: 3000 }), email);
    expect(bad).toMatchObject({ ok: false, stage: "connect" });
  });
});

describe("SmtpQueue", () => {
  test("enqueue returns at once; emails go one at a time, in order", async () => {
    const srv = fakeSmtp({ delayMs: 20 });
    const log = captureLog();
    const q = new SmtpQueue(settings(srv.port), log);
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) expect(q.enqueue({ subject: `n${i}`, body: "b" })).toBe(true);
    expect(performance.now() - t0).toBeLessThan(300); // 4 emails × 7 replies × 20 ms take ~560 ms
    expect(await q.idle(5000)).toBe(true);
    expect(q.sent).toBe(4);
    expect(srv.maxConcurrent).toBe(1);
    expect(srv.conns.map((c) => /Subject: (\S+)/.exec(c.data)?.[1])).toEqual(["n0", "n1", "n2", "n3"]);
    expect(log.lines.filter((l) => l === "D SMTP alert successfully sent.").length).toBe(4);
  });

  test("failures are logged and counted, never thrown; the queue goes on", async () => {
    const srv = fakeSmtp({ reply: (cmd) => (cmd.startsWith("MAIL") && srv.conns.length === 1 ? "550 no" : undefined) });
    const log = captureLog();
    const q = new SmtpQueue(settings(srv.port), log);
    q.enqueue({ subject: "first", body: "b" });
    q.enqueue({ subject: "second", body: "b" });
    expect(await q.idle(5000)).toBe(true);
    expect([q.sent, q.failed]).toEqual([1, 1]);
    expect(log.lines.some((l) => l.startsWith("I Error processing MAIL cmd on SMTP server [127.0.0.1]") && l.includes("= 550"))).toBe(true);
  });

  test("a full queue drops and warns; close forgets what was not started", async () => {
    const srv = fakeSmtp({ banner: null });
    const log = captureLog();
    const q = new SmtpQueue(settings(srv.port, { timeoutMs: 200 }), log, { maxQueued: 2 });
    expect(q.enqueue({ subject: "a", body: "" })).toBe(true); // taken at once, in flight
    expect(q.enqueue({ subject: "b", body: "" })).toBe(true);
    expect(q.enqueue({ subject: "c", body: "" })).toBe(true);
    expect(q.enqueue({ subject: "d", body: "" })).toBe(false);
    expect(log.lines.some((l) => l.startsWith("W SMTP alert queue full"))).toBe(true);
    q.close();
    expect(q.enqueue({ subject: "e", body: "" })).toBe(false);
    expect(await q.idle(2000)).toBe(true);
    expect(q.failed).toBe(1);
    expect(q.dropped).toBe(3);
  });
});

// --- alert decisions and wording (src/daemon/alerts.ts) -----------------------------------------

describe("alerts: which state changes are mailed, and how", () => {
  const g = (extra: Partial<AlertGlobals> = {}): AlertGlobals => ({ router_id: "lb1", ...extra });
  const vs = { ip: "192.0.2.1", port: 80, protocol: "TCP" as const };
  const rs = { ip: "192.0.2.2", port: 8080 };

  test("defaults: VRRP and virtual servers off, real servers on, unless set globally", () => {
    expect(vrrpAlertEnabled(undefined, g())).toBe(false);
    expect(virtualServerAlertEnabled(undefined, g())).toBe(false);
    expect(realServerAlertEnabled(undefined, g())).toBe(true);
    expect(vrrpAlertEnabled(undefined, g({ smtp_alert: true }))).toBe(true);
    expect(realServerAlertEnabled(undefined, g({ smtp_alert: false }))).toBe(false);
    // the specific global wins over smtp_alert; the object's own setting wins over both
    expect(vrrpAlertEnabled(undefined, g({ smtp_alert: true, smtp_alert_vrrp: false }))).toBe(false);
    expect(vrrpAlertEnabled(true, g({ smtp_alert: false, smtp_alert_vrrp: false }))).toBe(true);
    expect(realServerAlertEnabled(undefined, g({ smtp_alert: true, smtp_alert_checker: false }))).toBe(false);
    expect(virtualServerAlertEnabled(undefined, g({ smtp_alert_checker: true }))).toBe(true);
    expect(realServerAlertEnabled(false, g({ smtp_alert_checker: true }))).toBe(false);
    // smtp_alert_vrrp does not touch checkers and vice versa
    expect(realServerAlertEnabled(undefined, g({ smtp_alert_vrrp: false }))).toBe(true);
    expect(vrrpAlertEnabled(undefined, g({ smtp_alert_checker: true }))).toBe(false);
  });

  test("alert globals from the global_defs document", () => {
    expect(alertGlobalsFromDoc("r1", { smtp_alert: true, no_email_faults: true, router_id: "x" })).toEqual({ router_id: "r1", smtp_alert: true, no_email_faults: true });
    expect(alertGlobalsFromDoc("r1", {})).toEqual({ router_id: "r1" });
  });

  test("instance and group subjects and bodies (vrrp_notify.c wording)", () => {
    expect(instanceEmail("lb1", "VI_1", "MASTER")).toEqual({ subject: "[lb1] VRRP Instance VI_1 - Entering MASTER state", body: "=> VRRP Instance is now owning VRRP VIPs <=" });
    expect(instanceEmail("lb1", "VI_1", "FAULT").body).toBe("=> VRRP Instance is no longer owning VRRP VIPs <=");
    expect(instanceEmail("lb1", "VI_1", "STOP").subject).toBe("[lb1] VRRP Instance VI_1 - Stopping");
    expect(instanceEmail("lb1", "VI_1", "DELETED")).toEqual({ subject: "[lb1] VRRP Instance VI_1 - Deleted", body: "=> VRRP Deleted at reload <=" });
    expect(groupEmail("lb1", "G", "BACKUP")).toEqual({ subject: "[lb1] VRRP Group G - Entering BACKUP state", body: "=> All VRRP group instances are now in BACKUP state <=" });
    expect(groupEmail("lb1", "G", "DELETED")).toBeUndefined();
  });

  test("only on change, FAULT suppressed by no_email_faults without being remembered", () => {
    const a = new VrrpAlerts(g({ no_email_faults: true }));
    const seq = (["BACKUP", "MASTER", "MASTER", "FAULT", "MASTER", "BACKUP", "BACKUP"] as const).map((s) => a.onState("instance", "VI_1", s, true)?.subject ?? "-");
    expect(seq).toEqual([
      "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
      "[lb1] VRRP Instance VI_1 - Entering MASTER state",
      "-", // same as last mailed
      "-", // FAULT not mailed
      "-", // MASTER again: last mailed was MASTER (FAULT was never mailed)
      "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
      "-",
    ]);
    const b = new VrrpAlerts(g());
    expect(b.onState("group", "G", "FAULT", true)?.subject).toBe("[lb1] VRRP Group G - Entering FAULT state");
    expect(b.onState("group", "G", "FAULT", true)).toBeUndefined();
    expect(b.onState("instance", "G", "FAULT", true)).toBeDefined(); // instances and groups are tracked apart
    expect(b.onState("instance", "VI_2", "MASTER", false)).toBeUndefined(); // disabled
    // disabled changes are not remembered: enabling later mails the current state
    expect(b.onState("instance", "VI_2", "MASTER", true)).toBeDefined();
  });

  test("decideVrrpAlert is pure", () => {
    const i = { kind: "instance" as const, name: "VI_1", state: "MASTER" as const, enabled: true, lastEmailed: "BACKUP" as const };
    expect(decideVrrpAlert(i, g()).lastEmailed).toBe("MASTER");
    expect(decideVrrpAlert(i, g()).email?.subject).toContain("Entering MASTER state");
    expect(decideVrrpAlert({ ...i, lastEmailed: "MASTER" }, g())).toEqual({ lastEmailed: "MASTER" });
  });

  test("checker emails: subject from the real server's state, body from the checker", () => {
    expect(checkerEmail(g(), rs, vs, false, "TCP", false)).toEqual({
      subject: "[lb1] Realserver [192.0.2.2]:tcp:8080 of virtual server [192.0.2.1]:tcp:80 - DOWN",
      body: "=> TCP CHECK failed on service <=",
    });
    expect(checkerMessage("HTTP", false)).toBe("=> CHECK failed on service : HTTP/SSL request failed <=");
    expect(checkerMessage("DNS", true)).toBe("=> DNS_CHECK: succeed on service <=");
    expect(checkerMessage("PING", true)).toBe("=> ICMP CHECK succeed on service <=");
    expect(checkerMessage("MISC", false, "timed out")).toBe("=> MISC CHECK timed out on service <=");
    expect(checkerMessage("BFD", true, "bfd1")).toBe("=> BFD CHECK bfd1 succeeded on service <=");
    expect(checkerMessage("SMTP", false, "connection refused")).toBe("=> CHECK failed on service : connection refused <=");
    expect(realServerRemovedEmail("lb1", rs, { fwmark: 3, protocol: "TCP" }, true)).toEqual({ subject: "[lb1] Realserver [192.0.2.2]:tcp:8080 of virtual server FWM 3 - DOWN", body: "=> Shutting down <=" });
  });

  test("checker rule: a change of this checker, and the server moved or no_checker_emails is off", () => {
    const base = { enabled: true, checkerWasUp: true, checkerIsUp: false, rsWasAlive: true, rsIsAlive: false };
    expect(shouldMailChecker(base, g())).toBe(true);
    expect(shouldMailChecker({ ...base, enabled: false }, g())).toBe(false);
    expect(shouldMailChecker({ ...base, checkerWasUp: false }, g())).toBe(false); // no checker change
    // a second checker failing on an already-dead server: mailed unless no_checker_emails
    const already = { ...base, rsWasAlive: false, rsIsAlive: false };
    expect(shouldMailChecker(already, g())).toBe(true);
    expect(shouldMailChecker(already, g({ no_checker_emails: true }))).toBe(false);
    expect(shouldMailChecker(base, g({ no_checker_emails: true }))).toBe(true);
  });

  test("virtual server quorum emails (ipwrapper.c wording)", () => {
    expect(virtualServerEmail("lb1", vs, { up: true, init: false, quorum: 2, hysteresis: 1, weightSum: 3 })).toEqual({
      subject: "[lb1] Virtualserver [192.0.2.1]:tcp:80 - UP",
      body: "=> Gained quorum 2+1=3 <= 3 <=",
    });
    expect(virtualServerEmail("lb1", vs, { up: false, init: false, quorum: 2, hysteresis: 1, weightSum: 0 }).body).toBe("=> Lost quorum 2+1=1 <= 0 <=");
    expect(virtualServerEmail("lb1", { group: "web", port: 80, protocol: "TCP" }, { up: true, init: true, quorum: 1, hysteresis: 0, weightSum: 1 })).toEqual({
      subject: "[lb1] Virtualserver [web]:80 - UP",
      body: "=> Starting with quorum up 1+0=1 <= 1 <=",
    });
    expect(virtualServerEmail("lb1", vs, { up: true, init: false, quorum: 1, hysteresis: 0, weightSum: 1, stopping: true })).toEqual({ subject: "[lb1] Virtualserver [192.0.2.1]:tcp:80 - DOWN", body: "=> Shutting down <=" });
  });
});
