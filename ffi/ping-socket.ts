/**
 * ICMP/ICMPv6 echo for PING_CHECK: an unprivileged ping socket (SOCK_DGRAM + IPPROTO_ICMP[V6],
 * allowed when the caller's group is inside net.ipv4.ping_group_range), else a raw socket
 * (root). Replies are read through the FdWatcher, so nothing blocks the loop.
 */
import {
  AF_INET, AF_INET6, IPPROTO_ICMPV6, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET, SO_BINDTODEVICE,
  SysError, alloc, bind, close, cstr, decodeSockaddrIP, ifNameToIndex, recvfromRaw, sendto, setsockoptBuf, socket, sockaddrIn, sockaddrIn6, view,
} from "./libc.ts";
import { createFdWatcher, type FdWatcher } from "./fdwatch.ts";

const IPPROTO_ICMP = 1;
const EAGAIN = 11;
const ECHO_REQUEST_V4 = 8, ECHO_REPLY_V4 = 0, ECHO_REQUEST_V6 = 128, ECHO_REPLY_V6 = 129;
const PAYLOAD_BYTES = 56;

/** One echo request's parameters. */
export interface EchoRequest {
  host: string;
  timeoutMs: number;
  bindto?: string;
  bindIf?: string;
}

/** Sends echo requests and waits for their replies. */
export interface PingTransport {
  /** One echo; resolves ok on the matching reply, else with why not. Never rejects. */
  echo(r: EchoRequest): Promise<{ ok: boolean; detail: string }>;
  /** Releases the fd watcher if this transport created it. */
  close(): void;
}

/** The ICMP checksum (RFC 1071). */
export function icmpChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** An echo request: type, code 0, checksum (IPv4), id, seq, payload. */
export function echoRequest(v6: boolean, id: number, seq: number): Uint8Array {
  const p = new Uint8Array(8 + PAYLOAD_BYTES);
  const v = new DataView(p.buffer);
  p[0] = v6 ? ECHO_REQUEST_V6 : ECHO_REQUEST_V4;
  v.setUint16(4, id);
  v.setUint16(6, seq);
  for (let i = 8; i < p.length; i++) p[i] = i & 0xff;
  if (!v6) v.setUint16(2, icmpChecksum(p)); // ICMPv6 checksums are filled in by the kernel
  return p;
}

/** Opens a ping socket, falling back to a raw one; returns the fd and whether it is raw. */
function openIcmp(v6: boolean): { fd: number; raw: boolean } {
  const family = v6 ? AF_INET6 : AF_INET;
  const proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  try {
    return { fd: socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto), raw: false };
  } catch (e) {
    // EACCES: outside ping_group_range; root may still open a raw socket
    try {
      return { fd: socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto), raw: true };
    } catch {
      throw e;
    }
  }
}

/** Creates a transport on `watcher` (a new SIGIO watcher if none is given). */
export function createPingTransport(watcher?: FdWatcher): PingTransport {
  let own: FdWatcher | undefined;
  const fdw = () => watcher ?? (own ??= createFdWatcher({ keepAlive: false }));
  let seq = 0;
  return {
    echo(r) {
      return new Promise((resolve) => {
        const v6 = r.host.includes(":");
        let fd = -1;
        let done = false;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const finish = (ok: boolean, detail: string) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (fd >= 0) {
            try {
              fdw().unwatch(fd);
            } catch {
              /* not watched yet */
            }
            close(fd);
          }
          resolve({ ok, detail });
        };
        try {
          const s = openIcmp(v6);
          fd = s.fd;
          const [addr, scope] = r.host.split("%") as [string, string | undefined];
          const ifname = scope ?? r.bindIf;
          if (ifname) setsockoptBuf(fd, SOL_SOCKET, SO_BINDTODEVICE, cstr(ifname), "SO_BINDTODEVICE");
          if (r.bindto) bind(fd, v6 ? sockaddrIn6(r.bindto) : sockaddrIn(r.bindto));
          const id = s.raw ? Math.floor(Math.random() * 65536) : 0; // a ping socket puts its own id (its port)
          const mySeq = (seq = (seq + 1) & 0xffff);
          const dest = v6 ? sockaddrIn6(addr, 0, ifname && /^fe80:/i.test(addr) ? ifNameToIndex(ifname) : 0) : sockaddrIn(addr);
          const buf = alloc(2048);
          const from = alloc(128);
          const fromLen = alloc(4);
          const onReadable = () => {
            for (let i = 0; i < 64 && !done; i++) {
              view(fromLen).setUint32(0, 128, true);
              const n = recvfromRaw(fd, buf, 0, from, fromLen);
              if (n === -EAGAIN) return;
              if (n < 0) return finish(false, `ICMP error: ${new SysError("recvfrom", -n).message}`);
              const src = decodeSockaddrIP(from, view(fromLen).getUint32(0, true));
              let icmp = buf.subarray(0, n);
              if (s.raw && !v6) icmp = icmp.subarray((icmp[0]! & 0x0f) * 4); // raw IPv4 includes the IP header
              if (icmp.length < 8) continue;
              const dv = new DataView(icmp.buffer, icmp.byteOffset, icmp.byteLength);
              if (icmp[0] !== (v6 ? ECHO_REPLY_V6 : ECHO_REPLY_V4)) continue;
              if (s.raw && dv.getUint16(4) !== id) continue;
              if (dv.getUint16(6) !== mySeq) continue;
              if (src && src.addr !== addr) continue;
              return finish(true, `ICMP echo reply (${s.raw ? "raw socket" : "ping socket"})`);
            }
          };
          timer = setTimeout(() => finish(false, "ICMP timeout"), Math.max(1, Math.ceil(r.timeoutMs)));
          fdw().watch(fd, onReadable);
          sendto(fd, echoRequest(v6, id, mySeq), 0, dest, "sendto(icmp echo)");
        } catch (e) {
          finish(false, `ICMP error: ${(e as Error).message}`);
        }
      });
    },
    close() {
      own?.close();
      own = undefined;
    },
  };
}
