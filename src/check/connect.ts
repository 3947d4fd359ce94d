/**
 * TCP (and TLS) connections for checkers, with keepalived's timeouts: the connect (with the TLS
 * handshake) and every later read must each complete within connect_timeout. The socket is
 * opened through libc (ffi/tcp-socket.ts) so fwmark, bind_if, bindto and bind_port apply as in
 * keepalived's socket_bind_connect; once connected, Bun's own socket layer (`Bun.connect({ fd })`)
 * carries the data and the TLS. TCP_CHECK needs no data at all: `probeTcp` connects and closes.
 */
import { lookup } from "node:dns/promises";
import net from "node:net";
import { closeFd, tcpConnect, type SocketFailure, type SocketTarget } from "../../ffi/tcp-socket.ts";
import type { ConnectTarget } from "./checker.ts";

/**
 * The global SSL { } block, files already read: keepalived loads them into its one client
 * context (certificate chain, key with `password`, `ca` as trust store) and never verifies
 * the server (no SSL_VERIFY_PEER), so neither do we.
 */
export interface TlsClientContext {
  cert?: string;
  key?: string;
  passphrase?: string;
  ca?: string;
}

/** TLS as SSL_GET does it: no certificate verification, optional SNI, optional client context. */
export interface TlsSettings {
  servername?: string;
  context?: TlsClientContext;
}

/** An open checker connection: its incoming data, a flushing write and a hard close. */
export interface Connection {
  readonly inbox: Inbox;
  /** Writes and resolves once all bytes went to the kernel (false on error). */
  write(data: string | Uint8Array): Promise<boolean>;
  /** Closes at once; pending reads end. */
  destroy(): void;
}

export type Connected = { ok: true; conn: Connection } | { ok: false; detail: string };

/** keepalived's log words for a failed socket set-up step, or the connect's own error. */
function failureDetail(t: ConnectTarget, f: SocketFailure): string {
  switch (f.step) {
    case "fwmark":
      return `Error setting fwmark ${t.fwmark} to socket: ${f.code}`;
    case "bind_if":
      return `Checker can't bind to device ${t.bindIf}: ${f.code}`;
    case "bind":
      return `Checker bind failed: ${f.code}`;
    default:
      return `Error connecting: ${f.code}`;
  }
}

/** The target with its host as an IP literal (genhash may name a host); undefined if it does not resolve. */
async function resolveTarget(t: ConnectTarget): Promise<SocketTarget | undefined> {
  const s: SocketTarget = { host: t.host, port: t.port };
  if (t.bindto) s.bindto = t.bindto;
  if (t.bindPort) s.bindPort = t.bindPort;
  if (t.bindIf) s.bindIf = t.bindIf;
  if (t.fwmark) s.fwmark = t.fwmark;
  if (net.isIP(t.host.replace(/%.*$/, "")) !== 0) return s;
  try {
    s.host = (await lookup(t.host)).address;
    return s;
  } catch {
    return undefined;
  }
}

/** TCP_CHECK's probe: connect within the timeout, then close; never rejects. */
export async function probeTcp(t: ConnectTarget): Promise<{ ok: true } | { ok: false; detail: string; timeout?: boolean }> {
  const s = await resolveTarget(t);
  if (!s) return { ok: false, detail: `Error connecting: cannot resolve ${t.host}` };
  const r = await tcpConnect(s, t.timeoutMs).result;
  if (r.ok) {
    closeFd(r.fd);
    return { ok: true };
  }
  if (r.timeout) return { ok: false, detail: "Timeout connecting", timeout: true };
  return { ok: false, detail: failureDetail(t, r) };
}

/** Connects (and handshakes, with `tlsSettings`) within the target's timeout; never rejects. */
export async function openConnection(t: ConnectTarget, tlsSettings?: TlsSettings): Promise<Connected> {
  const started = performance.now();
  const s = await resolveTarget(t);
  if (!s) return { ok: false, detail: `Error connecting: cannot resolve ${t.host}` };
  const r = await tcpConnect(s, t.timeoutMs).result;
  if (!r.ok) return { ok: false, detail: r.timeout ? "Timeout connecting" : failureDetail(t, r) };
  return adopt(r.fd, tlsSettings, Math.max(1, t.timeoutMs - (performance.now() - started)));
}

type BunSocket = { write(d: Uint8Array): number; end(): void; terminate(): void };

/** Hands a connected fd to Bun (TLS handshake included) and wraps it as a Connection. */
function adopt(fd: number, tlsSettings: TlsSettings | undefined, handshakeMs: number): Promise<Connected> {
  return new Promise((resolve) => {
    const inbox = new Inbox();
    let sock: BunSocket | undefined;
    let settled = false;
    let closed = false;
    const pending: Array<{ data: Uint8Array; done: (ok: boolean) => void }> = [];
    const flush = () => {
      while (sock && pending.length) {
        const p = pending[0]!;
        const n = sock.write(p.data);
        if (n < 0) {
          pending.shift();
          p.done(false);
          continue;
        }
        if (n < p.data.length) {
          p.data = p.data.subarray(n);
          return;
        }
        pending.shift();
        p.done(true);
      }
    };
    const conn: Connection = {
      inbox,
      write(data) {
        if (closed || !sock) return Promise.resolve(false);
        const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
        return new Promise((done) => {
          pending.push({ data: bytes, done });
          flush();
        });
      },
      destroy() {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        try {
          sock?.terminate();
        } catch {
          /* already closed */
        }
        inbox.put({ kind: "end" });
        for (const p of pending.splice(0)) p.done(false);
      },
    };
    const finish = (c: Connected) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!c.ok) conn.destroy();
      resolve(c);
    };
    const failWord = (e: unknown) => {
      const code = (e as { code?: string } | undefined)?.code ?? String((e as Error | undefined)?.message ?? e ?? "closed");
      return tlsSettings ? `SSL handshake/communication error connecting: ${code}` : `Error connecting: ${code}`;
    };
    const timer = setTimeout(() => finish({ ok: false, detail: "Timeout connecting" }), Math.ceil(handshakeMs));
    const handlers = {
      open(s: BunSocket) {
        sock = s;
        if (!tlsSettings) finish({ ok: true, conn });
      },
      // a certificate verification error is expected (keepalived does not verify the server);
      // a failed handshake comes here too, as an EPROTO error carrying OpenSSL's reason
      handshake(s: BunSocket, _authorized: boolean, err?: { code?: string; message?: string } | null) {
        sock = s;
        if (err && (err.code === "EPROTO" || /SSL routines/.test(err.message ?? ""))) {
          const reason = /:([A-Z0-9_]+)$/.exec(err.message ?? "")?.[1] ?? err.code;
          finish({ ok: false, detail: `SSL handshake/communication error connecting: ${reason}` });
        } else finish({ ok: true, conn });
      },
      data(_s: BunSocket, d: Uint8Array) {
        inbox.put({ kind: "data", data: new Uint8Array(d) });
      },
      drain() {
        flush();
      },
      end() {
        inbox.put({ kind: "end" });
      },
      close(_s: BunSocket, err?: unknown) {
        closed = true;
        if (!settled) finish({ ok: false, detail: failWord(err ?? "Connection closed") });
        inbox.put(err ? { kind: "error", detail: failWord(err) } : { kind: "end" });
        for (const p of pending.splice(0)) p.done(false);
      },
      error(_s: BunSocket, err: unknown) {
        if (!settled) finish({ ok: false, detail: failWord(err) });
        inbox.put({ kind: "error", detail: (err as { code?: string }).code ?? String((err as Error).message ?? err) });
      },
    };
    const opts: Record<string, unknown> = { fd, socket: handlers };
    if (tlsSettings) {
      const tls: Record<string, unknown> = { rejectUnauthorized: false };
      if (tlsSettings.servername && net.isIP(tlsSettings.servername) === 0) tls.serverName = tlsSettings.servername;
      const c = tlsSettings.context;
      if (c?.cert) tls.cert = c.cert;
      if (c?.key) tls.key = c.key;
      if (c?.passphrase !== undefined) tls.passphrase = c.passphrase;
      if (c?.ca) tls.ca = c.ca;
      opts.tls = tls;
    }
    try {
      (Bun.connect(opts as unknown as Parameters<typeof Bun.connect>[0]) as Promise<unknown>).catch((e: unknown) => finish({ ok: false, detail: failWord(e) }));
    } catch (e) {
      closeFd(fd);
      finish({ ok: false, detail: failWord(e) });
    }
  });
}

/** What a read produced: bytes, the peer's close, a timeout or an error. */
export type ReadResult = { kind: "data"; data: Uint8Array } | { kind: "end" } | { kind: "timeout" } | { kind: "error"; detail: string };

/** Queues a connection's data so a checker can await the next chunk with a timeout. */
export class Inbox {
  #queue: ReadResult[] = [];
  #waiter: ((r: ReadResult) => void) | undefined;
  #closed = false;

  /** Adds a chunk, or the end/error (after which nothing more is queued). */
  put(r: ReadResult): void {
    if (this.#closed) return;
    if (r.kind !== "data") this.#closed = true;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w(r);
    } else this.#queue.push(r);
  }

  /** The next chunk, or end/error; "timeout" when nothing comes within `timeoutMs`. */
  next(timeoutMs: number): Promise<ReadResult> {
    const q = this.#queue.shift();
    if (q) return Promise.resolve(q);
    if (this.#closed) return Promise.resolve({ kind: "end" });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve({ kind: "timeout" });
      }, Math.max(1, Math.ceil(timeoutMs)));
      this.#waiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }
}
