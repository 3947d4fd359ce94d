/**
 * Fire-and-forget AF_UNIX datagrams (syslog's /dev/log, systemd's $NOTIFY_SOCKET): one
 * non-blocking unconnected socket, one `sendto` per message, errors returned as errno
 * numbers instead of thrown, so callers can fall back without try/catch on every line.
 */
import { EAGAIN, EINVAL, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SysError, alloc, close, sendto, socket } from "./libc.ts";

/** AF_UNIX (libc.ts does not export it). */
const AF_UNIX_FAMILY = 1;

/** sizeof(sockaddr_un.sun_path) on Linux. */
const SUN_PATH_MAX = 108;

/**
 * Encodes a sockaddr_un. A leading "@" (systemd's notation) or NUL names an abstract socket,
 * whose length counts only the name; a path gets its terminating NUL.
 */
export function sockaddrUn(path: string): Uint8Array {
  const abstract = path.startsWith("@") || path.startsWith("\0");
  const name = new TextEncoder().encode(abstract ? path.slice(1) : path);
  if (name.length + 1 > SUN_PATH_MAX) throw new Error(`unix socket path too long (${name.length} bytes): ${path}`);
  const len = 2 + (abstract ? 1 + name.length : name.length + 1);
  const b = alloc(len);
  new DataView(b.buffer).setUint16(0, AF_UNIX_FAMILY, true);
  b.set(name, abstract ? 3 : 2);
  return b;
}

/** Sends datagrams to one AF_UNIX address; never blocks and never throws from `send`. */
export class UnixDgramSender {
  readonly path: string;
  #addr: Uint8Array;
  #fd = -1;

  constructor(path: string) {
    this.path = path;
    this.#addr = sockaddrUn(path);
  }

  /** Sends one datagram: 0 on success, else the errno (ENOENT, ECONNREFUSED, EAGAIN, ...). */
  send(data: Uint8Array): number {
    try {
      if (this.#fd < 0) this.#fd = socket(AF_UNIX_FAMILY, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sendto(this.#fd, data, MSG_DONTWAIT, this.#addr);
      return 0;
    } catch (e) {
      // A socket in an odd state is cheaper to replace than to diagnose.
      if (e instanceof SysError && e.errno !== EAGAIN) this.close();
      return e instanceof SysError ? e.errno : EINVAL;
    }
  }

  /** Releases the socket (the next send opens a new one). */
  close(): void {
    if (this.#fd >= 0) close(this.#fd);
    this.#fd = -1;
  }
}
