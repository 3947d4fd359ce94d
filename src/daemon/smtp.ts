/**
 * A small async SMTP client for alert emails, keepalived's smtp.c dialogue on Bun.connect:
 * 220 banner, HELO, MAIL FROM, one RCPT TO per address, DATA, the message, QUIT. Every step
 * is bounded by a timeout; failures are logged and returned, never thrown. SmtpQueue sends
 * one email at a time in the background, so a slow or dead server never delays the loop.
 *
 * Differences from keepalived, on purpose:
 * - A rejected RCPT does not abandon the email: it goes to the recipients the server
 *   accepted (keepalived sends QUIT at the first rejection, so one stale address silences
 *   every alert). With no recipient accepted, the email is abandoned.
 * - The body is dot-stuffed and bare LF become CRLF (keepalived sends it as is).
 * - smtp_server may be a host name; it is resolved for each email, within the connect timeout.
 * - X-Mailer says vipd.
 */
import { hostname as osHostname, userInfo } from "node:os";
import type { Logger } from "./logger.ts";

// --- addresses and the message -----------------------------------------------------------------

/**
 * The envelope form of a configured address: `"Ops <ops@example.org>"` → `<ops@example.org>`,
 * `root@example.org` → `<root@example.org>` (keepalived's mail_cmd/rcpt_cmd rule).
 */
export function envelopeAddress(addr: string): string {
  const a = addr.trim();
  const lt = a.lastIndexOf("<");
  if (a.endsWith(">") && lt >= 0) return a.slice(lt);
  return `<${a}>`;
}

/**
 * An address as written in From/To headers, keepalived's format_email_addr: a display name
 * holding RFC 5322 specials (`()<>[]:;@\,.`) is double-quoted with `"` and `\` escaped;
 * anything else is kept as configured.
 */
export function headerAddress(addr: string): string {
  if (!addr.endsWith(">")) return addr;
  const lt = addr.lastIndexOf("<");
  if (lt < 0) return addr;
  let end = lt; // end of the display name, blanks before '<' excluded
  while (end > 0 && (addr[end - 1] === " " || addr[end - 1] === "\t")) end--;
  const name = addr.slice(0, end);
  if (!/[()<>[\]:;@\\,.]/.test(name)) return addr;
  if (name.startsWith('"') && name.endsWith('"') && name.length >= 2) return addr; // already quoted
  return `"${name.replace(/["\\]/g, (c) => `\\${c}`)}"${addr.slice(end)}`;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number) => String(n).padStart(2, "0");

/** `Mon, 01 Mar 2021 09:44:08 +0000`: RFC 2822 date in local time, as keepalived's strftime. */
export function rfc2822Date(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  return `${DAYS[d.getDay()]}, ${pad2(d.getDate())} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`;
}

/** Text with every line ending made CRLF and lines starting with `.` dot-stuffed (RFC 5321 4.5.2). */
export function dotStuff(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => (l.startsWith(".") ? `.${l}` : l))
    .join("\r\n");
}

/** An alert email's content. */
export interface Email {
  subject: string;
  body: string;
}

/**
 * The DATA payload up to and including the final `.` line: keepalived's headers (Date, From,
 * Subject, X-Mailer, To with one address per line), a blank line, the dot-stuffed body.
 */
export function buildMessage(from: string, to: readonly string[], email: Email, date: Date): string {
  const subject = email.subject.replace(/[\r\n]+/g, " ");
  const toHeader = to.map(headerAddress).join(",\r\n ");
  return (
    `Date: ${rfc2822Date(date)}\r\n` +
    `From: ${headerAddress(from)}\r\n` +
    `Subject: ${subject}\r\n` +
    `X-Mailer: vipd\r\n` +
    `To: ${toHeader}\r\n` +
    `\r\n` +
    `${dotStuff(email.body)}\r\n` +
    `\r\n.\r\n`
  );
}

// --- replies -----------------------------------------------------------------------------------

/** One SMTP reply: its code and its text lines (multi-line replies joined). */
export interface SmtpReply {
  code: number;
  lines: string[];
}

/** Longest reply line accepted, and most lines in one reply (bounded memory against a hostile server). */
const MAX_LINE = 4096;
const MAX_REPLY_LINES = 100;

/**
 * Incremental reply parser: feed bytes, take complete replies. `250-a` lines continue a reply,
 * `250 b` (or a bare `250`) ends it. Throws on a malformed or over-long reply.
 */
export class ReplyParser {
  private buf = "";
  private pending: string[] = [];
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private readonly ready: SmtpReply[] = [];

  /** Adds received bytes; complete replies become available through take(). */
  feed(chunk: Uint8Array | string): void {
    this.buf += typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl < 0) break;
      const line = this.buf.slice(0, nl).replace(/\r$/, "");
      this.buf = this.buf.slice(nl + 1);
      this.line(line);
    }
    if (this.buf.length > MAX_LINE) throw new Error(`reply line longer than ${MAX_LINE} bytes`);
  }

  /** The oldest complete reply, if any. */
  take(): SmtpReply | undefined {
    return this.ready.shift();
  }

  private line(line: string): void {
    const m = /^(\d{3})(?:([ -])(.*))?$/.exec(line);
    if (!m) throw new Error(`malformed reply line '${line.slice(0, 80)}'`);
    const code = Number(m[1]);
    this.pending.push(m[3] ?? "");
    if (this.pending.length > MAX_REPLY_LINES) throw new Error(`reply longer than ${MAX_REPLY_LINES} lines`);
    if (m[2] === "-") return;
    this.ready.push({ code, lines: this.pending });
    this.pending = [];
  }
}

// --- one email ---------------------------------------------------------------------------------

/** Where and how alert emails are sent (global_defs smtp_* and notification_email*). */
export interface SmtpSettings {
  /** smtp_server: an address or a host name. */
  host: string;
  /** Default 25. */
  port: number;
  /** smtp_helo_name (default: the host name). */
  heloName: string;
  /** notification_email_from (default user@hostname). */
  from: string;
  /** notification_email, as configured (display names allowed). */
  to: readonly string[];
  /** smtp_connect_timeout in ms (default 30 s): bounds the connect and each reply, as keepalived. */
  timeoutMs: number;
}

/** How a send ended. */
export interface SmtpResult {
  ok: boolean;
  /** The step that failed (connect, banner, HELO, MAIL, RCPT, DATA, BODY, QUIT). */
  stage?: string;
  /** The server's reply code at the failing step. */
  code?: number;
  error?: string;
  /** Recipients the server accepted. */
  accepted: string[];
  rejected: string[];
  durationMs: number;
}

/** `[192.0.2.25]:25`, `[mail.example.org]:587`: the server as keepalived's log lines print it. */
export function serverLabel(s: Pick<SmtpSettings, "host" | "port">): string {
  return `[${s.host}]:${s.port}`;
}

class StepError extends Error {
  constructor(
    readonly stage: string,
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

/** A connected SMTP session: send lines, await replies with a deadline each. */
class Session {
  private readonly parser = new ReplyParser();
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private outbox: Uint8Array[] = [];
  socket: Bun.Socket<undefined> | undefined;

  onData(data: Uint8Array): void {
    try {
      this.parser.feed(data);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.deliver();
  }

  onClosed(why: string): void {
    this.fail(new Error(why));
  }

  fail(e: Error): void {
    if (!this.failure) this.failure = e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private deliver(): void {
    if (!this.waiter) return;
    const r = this.parser.take();
    if (!r) return;
    const w = this.waiter;
    this.waiter = undefined;
    w.resolve(r);
  }

  /** Next reply, or rejects after `ms` / when the connection fails. */
  reply(ms: number, stage: string): Promise<SmtpReply> {
    const queued = this.parser.take();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(new StepError(stage, this.failure.message));
    return new Promise<SmtpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new StepError(stage, `timeout after ${ms} ms waiting for the reply`));
      }, ms);
      this.waiter = {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(new StepError(stage, e.message))),
      };
    });
  }

  /** Queues text for sending, honouring backpressure (the rest goes out on drain). */
  send(text: string): void {
    this.outbox.push(new TextEncoder().encode(text));
    this.flush();
  }

  flush(): void {
    const s = this.socket;
    if (!s) return;
    while (this.outbox.length) {
      const chunk = this.outbox[0]!;
      const n = s.write(chunk);
      if (n < 0) {
        this.fail(new Error("write failed: connection closed"));
        return;
      }
      if (n < chunk.length) {
        this.outbox[0] = chunk.subarray(n);
        return; // wait for drain
      }
      this.outbox.shift();
    }
  }
}

/** Resolves a host name to an address (IP literals pass through), bounded by `ms`. */
async function resolveHost(host: string, ms: number): Promise<string> {
  if (/^[0-9.]+$/.test(host) || host.includes(":")) return host;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timeout resolving ${host}`)), ms)));
  try {
    const found = await Promise.race([Bun.dns.lookup(host, {}), timeout]);
    if (!found.length) throw new Error(`no address for ${host}`);
    return found[0]!.address;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends one email through the whole dialogue. Never throws; the result says how far it got.
 * Each reply (banner included) must come within `timeoutMs`; so must DNS and the connect.
 */
export async function sendMail(s: SmtpSettings, email: Email, opts: { now?: () => Date } = {}): Promise<SmtpResult> {
  const started = performance.now();
  const accepted: string[] = [];
  const rejected: string[] = [];
  const session = new Session();
  const done = (r: Omit<SmtpResult, "accepted" | "rejected" | "durationMs">): SmtpResult => ({ ...r, accepted, rejected, durationMs: performance.now() - started });
  if (s.to.length === 0) return done({ ok: false, stage: "RCPT", error: "no recipients" });

  let socket: Bun.Socket<undefined> | undefined;
  let abandoned = false;
  try {
    // connect (DNS included) within the connect timeout
    const address = await resolveHost(s.host, s.timeoutMs).catch((e: Error) => {
      throw new StepError("connect", e.message);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Bun.connect({
      hostname: address,
      port: s.port,
      socket: {
        data: (_sock, data) => session.onData(data),
        drain: () => session.flush(),
        close: () => session.onClosed("connection closed by the server"),
        end: () => session.onClosed("connection closed by the server"),
        error: (_sock, err) => session.onClosed(`connection error: ${err.message}`),
        connectError: () => {},
      },
    });
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new StepError("connect", `timeout after ${s.timeoutMs} ms`)), s.timeoutMs)));
    // A connect that completes after the timeout must not leak a socket.
    void connecting.then(
      (sock) => {
        if (abandoned) sock.terminate();
      },
      () => {},
    );
    try {
      socket = await Promise.race([
        connecting.catch((e: Error) => {
          throw new StepError("connect", e.message);
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
    session.socket = socket;

    const expect = async (stage: string, want: number): Promise<SmtpReply> => {
      const r = await session.reply(s.timeoutMs, stage);
      if (r.code !== want) throw new StepError(stage, `Error processing ${stage} cmd on SMTP server ${serverLabel(s)}. SMTP status code = ${r.code}${r.lines.length ? ` (${r.lines.join(" ")})` : ""}`, r.code);
      return r;
    };

    await expect("banner", 220);
    session.send(`HELO ${s.heloName}\r\n`);
    await expect("HELO", 250);
    session.send(`MAIL FROM:${envelopeAddress(s.from)}\r\n`);
    await expect("MAIL", 250);
    for (const to of s.to) {
      session.send(`RCPT TO:${envelopeAddress(to)}\r\n`);
      const r = await session.reply(s.timeoutMs, "RCPT");
      if (r.code === 250 || r.code === 251) accepted.push(to);
      else rejected.push(to);
    }
    if (!accepted.length) throw new StepError("RCPT", `SMTP server ${serverLabel(s)} accepted no recipient`);
    session.send("DATA\r\n");
    await expect("DATA", 354);
    session.send(buildMessage(s.from, s.to, email, (opts.now ?? (() => new Date()))()));
    await expect("BODY", 250);
    session.send("QUIT\r\n");
    // The message is accepted; a server that does not answer QUIT politely does not undo that.
    await session.reply(s.timeoutMs, "QUIT").catch(() => undefined);
    return done({ ok: true });
  } catch (e) {
    abandoned = true;
    const se = e instanceof StepError ? e : new StepError("connect", (e as Error).message);
    if (socket) {
      try {
        socket.write("QUIT\r\n"); // best effort, as keepalived does after a bad reply
      } catch {
        // closed already
      }
    }
    return done({ ok: false, stage: se.stage, error: se.message, ...(se.code !== undefined ? { code: se.code } : {}) });
  } finally {
    abandoned = true;
    socket?.end();
  }
}

// --- the queue ---------------------------------------------------------------------------------

export interface SmtpQueueOptions {
  /** Emails waiting beyond this are dropped (newest first), with a warning. Default 100. */
  maxQueued?: number;
  /** Logs "SMTP alert successfully sent." at info instead of debug (keepalived's --log-detail). */
  logSuccess?: boolean;
  now?: () => Date;
}

/** Sends alert emails one at a time in the background; enqueue() returns at once. */
export class SmtpQueue {
  private readonly queue: Email[] = [];
  private busy: Promise<void> | undefined;
  private closed = false;
  sent = 0;
  failed = 0;
  dropped = 0;

  constructor(
    private settings: SmtpSettings,
    private readonly log: Logger,
    private readonly opts: SmtpQueueOptions = {},
  ) {}

  /** Replaces the settings (reload); emails already queued go with the new ones. */
  configure(settings: SmtpSettings): void {
    this.settings = settings;
  }

  /** Queues an email; false if dropped (queue full or closed). */
  enqueue(email: Email): boolean {
    if (this.closed) return false;
    if (this.queue.length >= (this.opts.maxQueued ?? 100)) {
      this.dropped++;
      this.log.warn(`SMTP alert queue full: dropping '${email.subject}'`);
      return false;
    }
    this.queue.push(email);
    if (!this.busy) this.busy = this.drain();
    return true;
  }

  /** Emails waiting, not counting the one being sent. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when the queue is empty and nothing is being sent, or after `maxMs`; true if idle. */
  async idle(maxMs: number): Promise<boolean> {
    if (!this.busy) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([this.busy.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), maxMs)))]);
    clearTimeout(timer);
    return r;
  }

  /** Stops accepting emails and forgets those not started; the one in flight finishes (bounded by its timeouts). */
  close(): void {
    this.closed = true;
    this.dropped += this.queue.length;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    try {
      for (let email = this.queue.shift(); email; email = this.queue.shift()) {
        const s = this.settings;
        const r = await sendMail(s, email, this.opts.now ? { now: this.opts.now } : {});
        for (const to of r.rejected) this.log.info(`SMTP server ${serverLabel(s)} rejected recipient ${to}`);
        if (r.ok) {
          this.sent++;
          (this.opts.logSuccess ? this.log.info : this.log.debug)("SMTP alert successfully sent.");
        } else {
          this.failed++;
          this.log.info(failureMessage(s, r));
        }
      }
    } catch (e) {
      this.log.error(`SMTP alert sender: ${(e as Error).message}`);
    } finally {
      this.busy = undefined;
    }
  }
}

/** keepalived-like log line for a failed send. */
function failureMessage(s: SmtpSettings, r: SmtpResult): string {
  const srv = serverLabel(s);
  if (r.stage === "connect") return `SMTP connection ERROR to ${srv}: ${r.error ?? "failed"}`;
  if (r.code !== undefined) return r.error ?? `Error processing ${r.stage} cmd on SMTP server ${srv}. SMTP status code = ${r.code}`;
  return `SMTP alert to ${srv} failed at ${r.stage}: ${r.error ?? "unknown error"}`;
}

// --- settings from the config ------------------------------------------------------------------

/**
 * SMTP settings from global_defs, with keepalived's defaults (port 25, HELO = host name,
 * From = user@hostname, 30 s timeout); undefined when no smtp_server or no notification_email
 * is configured (keepalived sends nothing then).
 */
export function smtpSettingsFromGlobal(
  globalDoc: Record<string, unknown>,
  env: { hostname?: string; user?: string } = {},
): SmtpSettings | undefined {
  const server = globalDoc.smtp_server as { host: string; port?: number } | undefined;
  const to = (globalDoc.notification_email as string[] | undefined) ?? [];
  if (!server || to.length === 0) return undefined;
  const host = env.hostname ?? osHostname();
  let user = env.user;
  if (user === undefined) {
    try {
      user = userInfo().username;
    } catch {
      user = "root";
    }
  }
  const timeoutS = (globalDoc.smtp_connect_timeout as number | undefined) ?? 30;
  return {
    host: server.host,
    port: server.port ?? 25,
    heloName: (globalDoc.smtp_helo_name as string | undefined) ?? host,
    from: (globalDoc.notification_email_from as string | undefined) ?? `${user}@${host}`,
    to,
    timeoutMs: timeoutS * 1000,
  };
}
