/**
 * Non-blocking TCP (and TLS) connections for checkers, with keepalived's timeouts: the connect
 * and every later read must each complete within connect_timeout. node:net is used (Bun runs it
 * natively on its loop) because it can bind the source address and port.
 */
import net from "node:net";
import tls from "node:tls";
import type { ConnectTarget } from "./checker.ts";

/** TLS as SSL_GET does it: no certificate verification (keepalived never sets a verify mode), optional SNI. */
export interface TlsSettings {
  servername?: string;
}

export type Connected = { ok: true; socket: net.Socket; inbox: Inbox } | { ok: false; detail: string };

/** Connects (and handshakes, with `tlsSettings`) within the target's timeout; never rejects. */
export function openConnection(t: ConnectTarget, tlsSettings?: TlsSettings): Promise<Connected> {
  return new Promise((resolve) => {
    let done = false;
    const opts: net.NetConnectOpts & tls.ConnectionOptions = { host: t.host, port: t.port };
    if (t.bindto) opts.localAddress = t.bindto;
    if (t.bindPort) opts.localPort = t.bindPort;
    let socket: net.Socket;
    try {
      if (tlsSettings) {
        const o: tls.ConnectionOptions = { ...opts, rejectUnauthorized: false };
        if (tlsSettings.servername && net.isIP(tlsSettings.servername) === 0) o.servername = tlsSettings.servername;
        socket = tls.connect(o);
      } else socket = net.connect(opts);
    } catch (e) {
      resolve({ ok: false, detail: `Error connecting: ${(e as Error).message}` });
      return;
    }
    const inbox = new Inbox(socket);
    const finish = (r: Connected) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("error", onError);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const onError = (e: Error & { code?: string }) =>
      finish({ ok: false, detail: tlsSettings && e.code !== "ECONNREFUSED" && e.code !== "EHOSTUNREACH" ? `SSL handshake/communication error connecting: ${e.code ?? e.message}` : `Error connecting: ${e.code ?? e.message}` });
    const timer = setTimeout(() => finish({ ok: false, detail: "Timeout connecting" }), Math.max(1, Math.ceil(t.timeoutMs)));
    socket.once("error", onError);
    socket.once(tlsSettings ? "secureConnect" : "connect", () => finish({ ok: true, socket, inbox }));
    socket.once("close", () => finish({ ok: false, detail: "Connection failed" }));
  });
}

/** What a read produced: bytes, the peer's close, a timeout or an error. */
export type ReadResult = { kind: "data"; data: Uint8Array } | { kind: "end" } | { kind: "timeout" } | { kind: "error"; detail: string };

/** Queues a socket's data so a checker can await the next chunk with a timeout. */
export class Inbox {
  #queue: ReadResult[] = [];
  #waiter: ((r: ReadResult) => void) | undefined;
  #closed = false;

  constructor(socket: net.Socket) {
    socket.on("data", (d: Buffer | string) => this.#put({ kind: "data", data: typeof d === "string" ? new TextEncoder().encode(d) : new Uint8Array(d) }));
    socket.on("error", (e: Error & { code?: string }) => this.#put({ kind: "error", detail: e.code ?? e.message }));
    socket.on("end", () => this.#put({ kind: "end" }));
    socket.on("close", () => this.#put({ kind: "end" }));
  }

  #put(r: ReadResult): void {
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

/** Writes and resolves once flushed (false on error). */
export function writeAll(socket: net.Socket, data: string | Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      socket.write(data, (err) => resolve(!err));
    } catch {
      resolve(false);
    }
  });
}
