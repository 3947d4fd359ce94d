/**
 * SMTP_CHECK: connect, expect a `220` banner, send `HELO name`, expect `250`, send `QUIT` and
 * read one more line. Each step must answer within connect_timeout. A status is exactly three
 * digits followed by a space (keepalived's smtp_get_status), so a `220-` banner fails, as there.
 */
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";
import { openConnection, type Inbox } from "./connect.ts";

/** SMTP_CHECK's default HELO name. */
export const DEFAULT_HELO = "smtpchecker.keepalived.org";

/** keepalived's smtp_get_status: the line's 3-digit code, or -1. */
export function smtpStatus(line: string): number {
  const m = /^(\d{3})(?: |$)/.exec(line.replace(/\r$/, ""));
  return m ? Number(m[1]) : -1;
}

/** Reads until a newline; returns the first line (the rest of that read is dropped, as keepalived). */
async function readLine(inbox: Inbox, timeoutMs: number): Promise<string | { error: string }> {
  let buf = "";
  for (;;) {
    const r = await inbox.next(timeoutMs);
    if (r.kind === "timeout") return { error: "Read timeout from server" };
    if (r.kind !== "data") return { error: "Read failure from server" };
    buf += Buffer.from(r.data).toString("latin1");
    const nl = buf.indexOf("\n");
    if (nl >= 0) return buf.slice(0, nl);
    if (buf.length > 4096) buf = "";
  }
}

/** keepalived's SMTP_CHECK (check_smtp.c). */
export class SmtpChecker implements Checker {
  readonly type = "SMTP_CHECK";
  #destroy: (() => void) | undefined;

  constructor(readonly target: ConnectTarget, readonly helo = DEFAULT_HELO) {}

  /** One banner/HELO/QUIT dialogue. */
  async run(): Promise<CheckOutcome> {
    const c = await openConnection(this.target);
    if (!c.ok) return { ok: false, detail: c.detail };
    this.#destroy = () => c.conn.destroy();
    try {
      const t = this.target.timeoutMs;
      const banner = await readLine(c.conn.inbox, t);
      if (typeof banner !== "string") return { ok: false, detail: banner.error };
      if (smtpStatus(banner) !== 220) return { ok: false, detail: `Bad greeting banner from server: ${banner.trim()}` };
      if (!(await c.conn.write(`HELO ${this.helo}\r\n`))) return { ok: false, detail: "Write failure to server" };
      const helo = await readLine(c.conn.inbox, t);
      if (typeof helo !== "string") return { ok: false, detail: helo.error };
      if (smtpStatus(helo) !== 250) return { ok: false, detail: `Bad HELO response from server: ${helo.trim()}` };
      if (!(await c.conn.write("QUIT\r\n"))) return { ok: false, detail: "Write failure to server" };
      const quit = await readLine(c.conn.inbox, t);
      if (typeof quit !== "string") return { ok: false, detail: quit.error };
      return { ok: true, detail: "SMTP server succeed" };
    } finally {
      c.conn.destroy();
      this.#destroy = undefined;
    }
  }

  close(): void {
    this.#destroy?.();
  }
}
