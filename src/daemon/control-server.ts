/**
 * The daemon's control socket: a unix stream socket (mode 0600) speaking newline-delimited JSON.
 * A request is one line `{"cmd":"status", ...}`; the answer is one line `{"ok":true,"result":...}`
 * or `{"ok":false,"error":"..."}`. Commands are looked up in a handler map the daemon supplies.
 *
 * Hostile or broken clients (garbage, huge lines, floods, half lines, vanishing peers) get an error
 * line or a closed connection; every buffer is bounded and no handler error escapes.
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { renderKeepalivedJson, toKeepalivedJson } from "./keepalived-json.ts";
import type { StatusProvider } from "./status-types.ts";

/** One decoded request line: at least a command name; other members are the command's arguments. */
export interface ControlRequest {
  cmd: string;
  [arg: string]: unknown;
}

/** Answers one command; the return value (or its promise) becomes `result`, a throw becomes `error`. */
export type ControlHandler = (request: ControlRequest) => unknown;

/** Command name → handler. */
export type ControlHandlers = Readonly<Record<string, ControlHandler>>;

export interface ControlServerOptions {
  /** Longest accepted request line in bytes (default 64 KiB); longer ones get an error and a close. */
  maxLineBytes?: number;
  /** Concurrent connections (default 128); extra clients get an error and a close. */
  maxConnections?: number;
  /** Requests queued on one connection before it is cut off (default 32). */
  maxPendingPerConnection?: number;
  /** Unanswered output one connection may hold before it is cut off (default 64 MiB). */
  maxOutputBytes?: number;
  /** Seconds a connection may sit idle (default 30). */
  idleTimeoutSeconds?: number;
  /** Where protocol trouble is reported (default: nowhere). */
  log?: (message: string) => void;
}

/** A running control socket. */
export interface ControlServer {
  readonly path: string;
  /** Connections open right now. */
  connections(): number;
  /** Stops listening, drops every connection and removes the socket file (if it is still ours). */
  close(): void;
}

export const MAX_REQUEST_LINE_BYTES = 64 * 1024;

interface Conn {
  /** Bytes of an unfinished request line. */
  partial: Uint8Array;
  /** Serialises this connection's requests so answers come back in order. */
  chain: Promise<void>;
  pending: number;
  /** Output the kernel has not taken yet. */
  out: Uint8Array[];
  outBytes: number;
  /** False once the connection was refused: further input is ignored. */
  reading: boolean;
  /** End the connection once `out` is flushed. */
  ending: boolean;
  closed: boolean;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Starts the control socket at `path`. A stale socket file is replaced; a live one (another daemon
 * answers) or a non-socket file at `path` makes this throw. The file is created with mode 0600.
 */
export async function startControlServer(path: string, handlers: ControlHandlers, options: ControlServerOptions = {}): Promise<ControlServer> {
  const maxLine = options.maxLineBytes ?? MAX_REQUEST_LINE_BYTES;
  const maxConns = options.maxConnections ?? 128;
  const maxPending = options.maxPendingPerConnection ?? 32;
  const maxOut = options.maxOutputBytes ?? 64 * 1024 * 1024;
  const idle = options.idleTimeoutSeconds ?? 30;
  const log = options.log ?? (() => {});

  await clearStaleSocket(path);

  let open = 0;

  const flush = (s: Socket<Conn>): void => {
    const c = s.data;
    while (c.out.length > 0 && !c.closed) {
      const chunk = c.out[0]!;
      const n = s.write(chunk);
      if (n < 0) return closeHard(s);
      c.outBytes -= n;
      if (n < chunk.length) {
        c.out[0] = chunk.subarray(n);
        return; // the rest goes out on drain
      }
      c.out.shift();
    }
    if (c.ending && c.out.length === 0 && !c.closed) s.end();
  };

  const send = (s: Socket<Conn>, reply: object): void => {
    const c = s.data;
    if (c.closed) return;
    const bytes = encoder.encode(JSON.stringify(reply) + "\n");
    if (c.outBytes + bytes.length > maxOut) {
      log(`control: client not reading its answers, dropping it`);
      return closeHard(s);
    }
    c.out.push(bytes);
    c.outBytes += bytes.length;
    flush(s);
  };

  /** Stops reading; after the answers already queued, sends an error and ends the connection. */
  const refuse = (s: Socket<Conn>, error: string): void => {
    const c = s.data;
    if (!c.reading) return;
    c.reading = false;
    c.partial = new Uint8Array(0);
    c.chain = c.chain
      .then(() => {
        send(s, { ok: false, error });
        c.ending = true;
        flush(s);
      })
      .catch((err: unknown) => log(`control: ${errorText(err)}`));
  };

  const closeHard = (s: Socket<Conn>): void => {
    const c = s.data;
    c.reading = false;
    c.ending = true;
    c.out = [];
    c.outBytes = 0;
    if (!c.closed) s.terminate();
  };

  const handleLine = async (s: Socket<Conn>, bytes: Uint8Array): Promise<void> => {
    const reply = await answer(bytes, handlers);
    send(s, reply);
  };

  const onData = (s: Socket<Conn>, chunk: Uint8Array): void => {
    const c = s.data;
    if (!c.reading || c.closed) return;
    let data = c.partial.length > 0 ? concat(c.partial, chunk) : chunk;
    for (;;) {
      const nl = data.indexOf(0x0a);
      if (nl < 0) break;
      let line = data.subarray(0, nl);
      data = data.subarray(nl + 1);
      if (line.length > maxLine) return refuse(s, `request line longer than ${maxLine} bytes`);
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length === 0) continue; // blank lines are harmless (interactive socat)
      if (c.pending >= maxPending) return refuse(s, `more than ${maxPending} requests queued on one connection`);
      c.pending++;
      const copy = line.slice(); // the chunk buffer is reused by the runtime
      c.chain = c.chain
        .then(() => handleLine(s, copy))
        .catch((err: unknown) => log(`control: ${errorText(err)}`))
        .finally(() => {
          c.pending--;
        });
    }
    if (data.length > maxLine) return refuse(s, `request line longer than ${maxLine} bytes`);
    c.partial = data.length > 0 ? data.slice() : new Uint8Array(0);
  };

  const previousUmask = process.umask(0o177); // no window in which the socket is group/world-accessible
  let listener: UnixSocketListener<Conn>;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    listener = Bun.listen<Conn>({
      unix: path,
      socket: {
        open(s) {
          s.data = { partial: new Uint8Array(0), chain: Promise.resolve(), pending: 0, out: [], outBytes: 0, reading: true, ending: false, closed: false };
          open++;
          s.timeout(idle);
          if (open > maxConns) refuse(s, `too many control connections (limit ${maxConns})`);
        },
        data(s, chunk) {
          try {
            onData(s, chunk);
          } catch (err) {
            log(`control: ${errorText(err)}`);
            closeHard(s);
          }
        },
        drain(s) {
          flush(s);
        },
        timeout(s) {
          closeHard(s);
        },
        close(s) {
          if (s.data.closed) return;
          s.data.closed = true;
          s.data.out = [];
          s.data.partial = new Uint8Array(0);
          open--;
        },
        error(s, err) {
          log(`control: connection error: ${errorText(err)}`);
          closeHard(s);
        },
      },
    });
  } finally {
    process.umask(previousUmask);
  }
  chmodSync(path, 0o600);
  const ino = statSync(path).ino;

  let stopped = false;
  return {
    path,
    connections: () => open,
    close() {
      if (stopped) return;
      stopped = true;
      listener.stop(true);
      // Bun removes the file itself; make sure, but never remove a socket that a newer daemon made.
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}

/** Decodes one request line and runs its handler; always returns a reply object, never throws. */
async function answer(bytes: Uint8Array, handlers: ControlHandlers): Promise<object> {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, error: "request is not UTF-8 text" };
  }
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch {
    return { ok: false, error: "request is not valid JSON" };
  }
  if (typeof request !== "object" || request === null || Array.isArray(request) || typeof (request as { cmd?: unknown }).cmd !== "string") {
    return { ok: false, error: 'request must be a JSON object with a "cmd" string' };
  }
  const req = request as ControlRequest;
  if (!Object.hasOwn(handlers, req.cmd)) {
    return { ok: false, error: `unknown command '${req.cmd.slice(0, 64)}' (known: ${Object.keys(handlers).sort().join(", ")})` };
  }
  let result: unknown;
  try {
    result = await handlers[req.cmd]!(req);
  } catch (err) {
    return { ok: false, error: `${req.cmd} failed: ${errorText(err)}` };
  }
  const reply = { ok: true, result: result === undefined ? null : result };
  try {
    JSON.stringify(reply); // catch cycles and BigInts here rather than in send()
  } catch (err) {
    return { ok: false, error: `${req.cmd}: cannot encode result: ${errorText(err)}` };
  }
  return reply;
}

/**
 * Removes a stale socket file at `path` so that listen can succeed. Throws when another process
 * answers on it, or when `path` is something other than a socket.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) throw new Error(`control socket path ${path} exists and is not a socket; refusing to replace it`);
  if (await answersConnect(path)) throw new Error(`another process is already listening on ${path} (is vipd already running?)`);
  unlinkSync(path);
}

/** True when something accepts connections on the unix socket at `path`. */
async function answersConnect(path: string): Promise<boolean> {
  try {
    const s = await Bun.connect({ unix: path, socket: { data() {}, error() {}, connectError() {} } });
    s.end();
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ECONNREFUSED" || code === "ENOENT") return false;
    throw new Error(`cannot probe ${path}: ${code ?? errorText(err)}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The standard read-only handlers over a status provider: `ping`, `status` (DaemonStatus) and
 * `json` (keepalived's dump; `{"cmd":"json","version":2}` for the v2 layout, `"text":true` for
 * keepalived's exact text). The daemon adds `reload` and friends itself.
 */
export function statusHandlers(provider: StatusProvider): Record<string, ControlHandler> {
  return {
    ping: () => "pong",
    status: () => provider.status(),
    json: (req) => {
      const version = req.version === 2 ? 2 : 1;
      const dump = toKeepalivedJson(provider.status(), version);
      return req.text === true ? renderKeepalivedJson(dump) : dump;
    },
  };
}
