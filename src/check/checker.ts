/**
 * What every health checker is: an object that runs one check when asked and says whether it
 * passed. The scheduler decides when; the checker only does the I/O, never blocking the loop.
 */
import type { SocketTarget } from "../../ffi/tcp-socket.ts";
import type { Doc } from "../config/schema/kinds.ts";

/** The result of one check. */
export interface CheckOutcome {
  ok: boolean;
  /** Why, in keepalived's words where it has some ("Timeout connecting", "HTTP status code error"…). */
  detail: string;
  /** misc_dynamic / FILE_CHECK: the checker's contribution to the real server's weight. */
  weightDelta?: number;
  /** Worth logging but not a failure (HTTP Content-Length mismatch). */
  note?: string;
}

/** One configured checker of one real server. */
export interface Checker {
  /** The config keyword: TCP_CHECK, HTTP_GET, … */
  readonly type: string;
  /** Runs one check (for HTTP, of url number `url`); never rejects. */
  run(url: number): Promise<CheckOutcome>;
  /** Aborts a running check and releases sockets/processes. */
  close(): void;
}

/** Where and how a checker connects (connect_ip, connect_port, bindto, bind_port, bind_if, fwmark), and its connect_timeout. */
export interface ConnectTarget extends SocketTarget {
  timeoutMs: number;
}

/** The checker's connection target: its own keywords over the real server's address and port. */
export function connectTarget(doc: Doc, rsIp: string, rsPort: number, timeoutMs: number): ConnectTarget {
  let host = typeof doc.connect_ip === "string" ? doc.connect_ip : rsIp;
  const bindIf = typeof doc.bind_if === "string" ? doc.bind_if : undefined;
  // an IPv6 link-local destination needs its interface (keepalived requires bind_if for it)
  if (bindIf && /^fe80:/i.test(host) && !host.includes("%")) host = `${host}%${bindIf}`;
  const t: ConnectTarget = { host, port: typeof doc.connect_port === "number" ? doc.connect_port : rsPort, timeoutMs };
  if (typeof doc.bindto === "string") t.bindto = doc.bindto;
  if (typeof doc.bind_port === "number") t.bindPort = doc.bind_port;
  if (bindIf) t.bindIf = bindIf;
  if (typeof doc.fwmark === "number") t.fwmark = doc.fwmark;
  return t;
}

/** keepalived's FMT_CHK text: "[192.0.2.1]:tcp:80". */
export function formatTarget(t: Pick<ConnectTarget, "host" | "port">, proto = "tcp"): string {
  return `[${t.host}]:${proto}:${t.port}`;
}
