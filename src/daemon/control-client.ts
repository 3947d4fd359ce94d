/**
 * The client side of the control socket: send one JSON request line, read one answer line.
 * Used by `vipd status` and friends; errors are one-line messages fit for a terminal.
 */

/** Where `vipd run` listens and `vipd status` connects unless told otherwise. */
export const DEFAULT_CONTROL_PATH = "/run/vipd/vipd.sock";

/** Largest answer accepted (a status of thousands of instances fits easily). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** Why a request failed: no daemon, no answer in time, a garbled answer, or the daemon said no. */
export type ControlErrorKind = "connect" | "timeout" | "protocol" | "remote";

/** A failed control request; `message` is one line. */
export class ControlError extends Error {
  readonly kind: ControlErrorKind;
  constructor(kind: ControlErrorKind, message: string) {
    super(message);
    this.name = "ControlError";
    this.kind = kind;
  }
}

/**
 * Sends `{"cmd": cmd, ...args}` to the control socket at `path` and returns the answer's `result`.
 * Throws a ControlError when the daemon cannot be reached, does not answer within `timeoutMs`,
 * answers garbage, or answers `{"ok":false}`.
 */
export function request(path: string, cmd: string, timeoutMs = 2000, args: Record<string, unknown> = {}): Promise<unknown> {
  const line = new TextEncoder().encode(JSON.stringify({ ...args, cmd }) + "\n");
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    let socket: { end(): void; terminate(): void } | undefined;
    const chunks: Uint8Array[] = [];
    let size = 0;
    let toSend = line;

    const finish = (err: ControlError | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.terminate();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new ControlError("timeout", `no answer from ${path} within ${timeoutMs} ms`)), timeoutMs);

    const write = (s: { write(b: Uint8Array): number }): void => {
      const n = s.write(toSend);
      if (n > 0) toSend = toSend.subarray(n);
    };

    Bun.connect({
      unix: path,
      socket: {
        open(s) {
          socket = s;
          if (settled) s.terminate();
          else write(s);
        },
        drain(s) {
          if (toSend.length > 0) write(s);
        },
        data(_s, chunk) {
          const nl = chunk.indexOf(0x0a);
          const part = nl < 0 ? chunk : chunk.subarray(0, nl);
          chunks.push(part.slice());
          size += part.length;
          if (size > MAX_ANSWER_BYTES) return finish(new ControlError("protocol", `answer from ${path} is larger than ${MAX_ANSWER_BYTES} bytes`));
          if (nl >= 0) finish(...decodeAnswer(path, chunks, size));
        },
        close() {
          finish(new ControlError("protocol", `${path} closed the connection without answering`));
        },
        error(_s, err) {
          finish(new ControlError("protocol", `connection to ${path} failed: ${codeOf(err)}`));
        },
        connectError(_s, err) {
          finish(connectError(path, err));
        },
      },
    }).catch((err: unknown) => finish(connectError(path, err)));
  });
}

/** Parses the answer line into [error] or [undefined, result]. */
function decodeAnswer(path: string, chunks: Uint8Array[], size: number): [ControlError | undefined, unknown?] {
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  let reply: unknown;
  try {
    reply = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return [new ControlError("protocol", `${path} answered something that is not JSON`)];
  }
  if (typeof reply !== "object" || reply === null || typeof (reply as { ok?: unknown }).ok !== "boolean") {
    return [new ControlError("protocol", `${path} answered without an "ok" field`)];
  }
  const r = reply as { ok: boolean; result?: unknown; error?: unknown };
  if (!r.ok) return [new ControlError("remote", typeof r.error === "string" ? r.error.split("\n")[0]! : "request failed")];
  return [undefined, r.result];
}

function connectError(path: string, err: unknown): ControlError {
  const code = codeOf(err);
  const hint = code === "ENOENT" || code === "ECONNREFUSED" ? " (is vipd running?)" : code === "EACCES" || code === "EPERM" ? " (permission denied; run as root?)" : "";
  return new ControlError("connect", `cannot connect to ${path}: ${code}${hint}`);
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return err instanceof Error ? err.message : String(err);
}
