/**
 * Alert emails through a real SMTP server: Debian's python3-aiosmtpd (the Mailbox handler,
 * which stores every message in a maildir with X-MailFrom/X-RcptTo envelope headers) runs in
 * one namespace of a two-node lab; vipd's SMTP client sends from the other, over IPv4, and
 * over IPv6 to a host name (resolved through the namespace's /etc/netns/<ns>/hosts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLab, run, type Lab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
/** Debian's interpreter: a python3 earlier on PATH (pyenv, venvs) does not see Debian's modules. */
const PYTHON = "/usr/bin/python3";
const HAVE_AIOSMTPD = ROOT && existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import aiosmtpd"]).exitCode === 0;
const SRC = resolve(import.meta.dir, "../../src/daemon");
const MAIL_HOST = "mail.vipd.test";

interface Received {
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** Parses a stored message: unfolded headers (lower-case names) and the body. */
function parseMessage(raw: string): Received {
  const text = raw.replace(/\r\n/g, "\n");
  const split = text.indexOf("\n\n");
  const head = text.slice(0, split).replace(/\n[ \t]+/g, " ");
  const headers: Record<string, string> = {};
  for (const line of head.split("\n")) {
    const c = line.indexOf(":");
    if (c > 0) headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
  }
  return { headers, body: text.slice(split + 2), raw };
}

async function waitFor<T>(fn: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

describe.skipIf(!HAVE_AIOSMTPD)("alert email through a real SMTP server (aiosmtpd) in a namespace", () => {
  let lab: Lab;
  let work: string;
  let maildir: string;
  let server: Bun.Subprocess | undefined;
  const hostsDirs: string[] = [];

  /** Messages stored so far. */
  const mails = (): Received[] =>
    ["new", "cur"].flatMap((d) => {
      const p = join(maildir, d);
      return existsSync(p) ? readdirSync(p).map((f) => parseMessage(readFileSync(join(p, f), "utf8"))) : [];
    });

  /** Runs the SMTP client inside the sender's namespace with a driver script; returns its JSON output. */
  async function sendFrom(node: string, driver: string, arg: unknown): Promise<unknown> {
    const file = join(work, `driver-${Math.random().toString(36).slice(2)}.ts`);
    writeFileSync(file, driver.replaceAll("$SRC", SRC));
    const p = Bun.spawn(["ip", "netns", "exec", lab.node(node).ns, process.execPath, file, JSON.stringify(arg)], { stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(killer);
    if (p.exitCode !== 0) throw new Error(`driver failed (${p.exitCode}): ${err}`);
    return JSON.parse(out.trim().split("\n").at(-1)!);
  }

  beforeAll(async () => {
    lab = createLab({ purpose: "smtp", nodes: ["mail", "lb"], v4: "192.0.2.0/24", v6: true });
    work = mkdtempSync(join(tmpdir(), "vipd-smtp-real-"));
    maildir = join(work, "maildir");
    const mail = lab.node("mail");
    // Host names, seen only inside the lab's namespaces (ip netns exec bind-mounts
    // /etc/netns/<ns>/hosts over /etc/hosts). The server listens on MAIL_HOST:25, which
    // asyncio binds once per address it resolves to, IPv4 and IPv6 (a "::" listener would
    // be IPv6-only: asyncio sets IPV6_V6ONLY).
    for (const n of lab.nodes) {
      const dir = `/etc/netns/${n.ns}`;
      mkdirSync(dir, { recursive: true });
      hostsDirs.push(dir);
    }
    writeFileSync(`/etc/netns/${mail.ns}/hosts`, `127.0.0.1 localhost\n${mail.v4} ${MAIL_HOST}\n${mail.v6} ${MAIL_HOST}\n`);
    writeFileSync(`/etc/netns/${lab.node("lb").ns}/hosts`, `127.0.0.1 localhost\n${mail.v6} ${MAIL_HOST}\n`);
    server = Bun.spawn(["ip", "netns", "exec", mail.ns, PYTHON, "-m", "aiosmtpd", "-n", "-l", `${MAIL_HOST}:25`, "-c", "aiosmtpd.handlers.Mailbox", maildir], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const srv = server;
    await waitFor(() => {
      if (srv.exitCode !== null) throw new Error(`aiosmtpd exited (${srv.exitCode})`);
      const ss = run(["ip", "netns", "exec", mail.ns, "ss", "-Htln", "sport = :25"], true).stdout;
      return ss.includes(`${mail.v4}:25`) && ss.includes(`[${mail.v6}]:25`);
    }, 10_000, "aiosmtpd to listen on port 25");
  }, 20_000);

  afterAll(async () => {
    if (server) {
      server.kill("SIGTERM");
      const t = setTimeout(() => server?.kill("SIGKILL"), 2000);
      await server.exited;
      clearTimeout(t);
    }
    for (const d of hostsDirs) rmSync(d, { recursive: true, force: true });
    lab?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 10_000);

  const sendOne = `
    import { sendMail } from "$SRC/smtp.ts";
    import { instanceEmail } from "$SRC/alerts.ts";
    const a = JSON.parse(process.argv[2]);
    const email = a.body === undefined ? instanceEmail(a.routerId, a.instance, a.state) : { subject: a.subject, body: a.body };
    const r = await sendMail(a.settings, email);
    console.log(JSON.stringify(r));
  `;

  test("a VRRP alert arrives with keepalived's subject, to every recipient (IPv4)", async () => {
    const before = mails().length;
    const settings = {
      host: lab.node("mail").v4,
      port: 25,
      heloName: "lb1.vipd.test",
      from: "vipd@lb1.vipd.test",
      to: ["ops@vipd.test", "Pager, Night <pager@vipd.test>"],
      timeoutMs: 5000,
    };
    const r = (await sendFrom("lb", sendOne, { settings, routerId: "lb1", instance: "VI_1", state: "MASTER" })) as { ok: boolean; accepted: string[] };
    expect(r).toMatchObject({ ok: true });
    expect(r.accepted.length).toBe(2);
    const got = await waitFor(() => (mails().length > before ? mails() : undefined), 5000, "the message in the maildir");
    const m = got.find((x) => x.headers.subject === "[lb1] VRRP Instance VI_1 - Entering MASTER state");
    expect(m).toBeDefined();
    expect(m!.headers["x-mailfrom"]).toBe("vipd@lb1.vipd.test");
    expect(m!.headers["x-rcptto"]).toBe("ops@vipd.test, pager@vipd.test");
    expect(m!.headers.to).toBe('ops@vipd.test, "Pager, Night" <pager@vipd.test>');
    expect(m!.headers.from).toBe("vipd@lb1.vipd.test");
    expect(m!.headers["x-mailer"]).toBe("vipd");
    expect(m!.headers["x-peer"]).toContain(lab.node("lb").v4!);
    expect(m!.body.trim()).toBe("=> VRRP Instance is now owning VRRP VIPs <=");
  });

  test("a host name resolved in the namespace, over IPv6; dot-stuffed lines arrive intact", async () => {
    const before = mails().length;
    const settings = { host: MAIL_HOST, port: 25, heloName: "lb1", from: "Keepalived Compat <ka@lb1.vipd.test>", to: ["ops@vipd.test"], timeoutMs: 5000 };
    const body = "line one\n.starts with a dot\n.\nlast";
    const r = (await sendFrom("lb", sendOne, { settings, subject: "[lb1] dots", body })) as { ok: boolean };
    expect(r.ok).toBe(true);
    const got = await waitFor(() => (mails().length > before ? mails() : undefined), 5000, "the message in the maildir");
    const m = got.find((x) => x.headers.subject === "[lb1] dots")!;
    expect(m).toBeDefined();
    expect(m.headers["x-mailfrom"]).toBe("ka@lb1.vipd.test");
    expect(m.headers["x-peer"]).toContain(lab.node("lb").v6!);
    expect(m.body).toContain("line one\n.starts with a dot\n.\nlast\n");
  });

  test("the alert queue mails only state changes, one connection at a time", async () => {
    const before = mails().length;
    const driver = `
      import { SmtpQueue } from "$SRC/smtp.ts";
      import { VrrpAlerts, vrrpAlertEnabled } from "$SRC/alerts.ts";
      const a = JSON.parse(process.argv[2]);
      const globals = { router_id: "lb1", smtp_alert: true, no_email_faults: true };
      const alerts = new VrrpAlerts(globals);
      const log = { info() {}, warn() {}, error: (m) => console.error(m), debug() {} };
      const q = new SmtpQueue(a.settings, log);
      for (const s of ["BACKUP", "MASTER", "MASTER", "FAULT", "MASTER", "BACKUP"]) {
        const e = alerts.onState("instance", "VI_7", s, vrrpAlertEnabled(undefined, globals));
        if (e) q.enqueue(e);
      }
      const idle = await q.idle(15000);
      console.log(JSON.stringify({ idle, sent: q.sent, failed: q.failed }));
    `;
    const settings = { host: lab.node("mail").v4, port: 25, heloName: "lb1", from: "vipd@lb1.vipd.test", to: ["ops@vipd.test"], timeoutMs: 5000 };
    const r = (await sendFrom("lb", driver, { settings })) as { idle: boolean; sent: number; failed: number };
    expect(r).toEqual({ idle: true, sent: 3, failed: 0 });
    const got = await waitFor(() => (mails().length >= before + 3 ? mails() : undefined), 5000, "three messages");
    const subjects = got.map((m) => m.headers.subject).filter((s) => s?.includes("VI_7"));
    expect(subjects.sort()).toEqual(
      ["[lb1] VRRP Instance VI_7 - Entering BACKUP state", "[lb1] VRRP Instance VI_7 - Entering BACKUP state", "[lb1] VRRP Instance VI_7 - Entering MASTER state"].sort(),
    );
  });

  test("a server address with nothing listening fails at connect, promptly", async () => {
    const settings = { host: lab.node("mail").v4, port: 2526, heloName: "lb1", from: "a@b", to: ["ops@vipd.test"], timeoutMs: 3000 };
    const t0 = performance.now();
    const r = (await sendFrom("lb", sendOne, { settings, routerId: "lb1", instance: "VI_1", state: "BACKUP" })) as { ok: boolean; stage: string };
    expect(r).toMatchObject({ ok: false, stage: "connect" });
    expect(performance.now() - t0).toBeLessThan(3000 + 2000);
  });

  test("a server address nobody answers for (no ARP reply) times out at the connect timeout", async () => {
    const settings = { host: "192.0.2.99", port: 25, heloName: "lb1", from: "a@b", to: ["ops@vipd.test"], timeoutMs: 500 };
    const r = (await sendFrom("lb", sendOne, { settings, routerId: "lb1", instance: "VI_1", state: "BACKUP" })) as { ok: boolean; stage: string; error: string; durationMs: number };
    expect(r).toMatchObject({ ok: false, stage: "connect" });
    expect(r.error).toContain("timeout");
    expect(r.durationMs).toBeGreaterThanOrEqual(490);
    expect(r.durationMs).toBeLessThan(1500);
  });
});
