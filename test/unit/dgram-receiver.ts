/** Test helper: an AF_UNIX datagram socket bound to a path or abstract name, read without blocking. */
import { MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, alloc, bind, close, recvfromRaw, socket } from "../../ffi/libc.ts";
import { sockaddrUn } from "../../ffi/unix-dgram.ts";

export class DgramReceiver {
  readonly fd: number;
  readonly path: string;
  #buf = alloc(65536);

  /** Binds `path` ("@name" for an abstract socket). */
  constructor(path: string) {
    this.path = path;
    this.fd = socket(1, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bind(this.fd, sockaddrUn(path));
  }

  /** Every datagram queued now, as text. */
  drain(): string[] {
    const out: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const n = recvfromRaw(this.fd, this.#buf, MSG_DONTWAIT, null, null);
      if (n < 0) break;
      out.push(new TextDecoder().decode(this.#buf.subarray(0, n)));
    }
    return out;
  }

  close(): void {
    close(this.fd);
  }
}
