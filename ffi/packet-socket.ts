/**
 * AF_PACKET raw socket on one interface, for sending complete Ethernet frames (GARP,
 * unsolicited NA) built elsewhere; plus interface flags (IFF_NOARP...) via SIOCGIFFLAGS.
 */
import {
  AF_PACKET, ETH_P_ALL, SIOCGIFFLAGS, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, IFNAMSIZ,
  alloc, attachDropAllFilter, bind, close, decodeSockaddrLl, formatMac, getsockname, ifNameToIndex,
  ioctl, sendto, sockaddrLl, socket, view,
} from "./libc.ts";

export const IFF_UP = 0x1, IFF_BROADCAST = 0x2, IFF_LOOPBACK = 0x8, IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40, IFF_NOARP = 0x80, IFF_PROMISC = 0x100, IFF_MULTICAST = 0x1000;
/** Only in rtnetlink's 32-bit ifi_flags (LinkInfo.flags); SIOCGIFFLAGS returns 16 bits. */
export const IFF_LOWER_UP = 0x10000;

/** A send-only AF_PACKET socket bound to one interface. Errors are thrown as SysError. */
export class PacketSocket {
  readonly fd: number;
  readonly ifname: string;
  readonly ifindex: number;
  /** The interface's hardware address (from getsockname's sll_addr), e.g. for frame sources. */
  readonly mac: Uint8Array;
  #closed = false;

  private constructor(fd: number, ifname: string, ifindex: number, mac: Uint8Array) {
    this.fd = fd;
    this.ifname = ifname;
    this.ifindex = ifindex;
    this.mac = mac;
  }

  /**
   * Opens the socket on `ifname` (or `ifindex`). Protocol 0 on bind means the socket
   * receives nothing; a drop-all filter makes sure of it.
   */
  static open(ifname: string, ifindex?: number): PacketSocket {
    const index = ifindex ?? ifNameToIndex(ifname);
    const fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    try {
      attachDropAllFilter(fd);
      bind(fd, sockaddrLl({ protocol: 0, ifindex: index }));
      const mac = decodeSockaddrLl(getsockname(fd)).addr;
      return new PacketSocket(fd, ifname, index, mac);
    } catch (err) {
      close(fd);
      throw err;
    }
  }

  /** The MAC as "aa:bb:cc:dd:ee:ff". */
  get macText(): string {
    return formatMac(this.mac);
  }

  /** Sends one complete Ethernet frame (destination MAC first). Returns bytes sent. */
  send(frame: Uint8Array): number {
    if (this.#closed) throw new Error("PacketSocket is closed");
    const ethertype = frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : ETH_P_ALL;
    const dst = sockaddrLl({ protocol: ethertype, ifindex: this.ifindex, addr: frame.subarray(0, 6) });
    return sendto(this.fd, frame, 0, dst, `sendto(${this.ifname})`);
  }

  /** Interface flags (IFF_*) of this socket's interface. */
  flags(): number {
    return interfaceFlags(this.ifname, this.fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.fd);
  }
}

/** Interface flags (IFF_UP, IFF_NOARP, ...) through SIOCGIFFLAGS on any socket `fd`. */
export function interfaceFlags(ifname: string, fd: number): number {
  const ifr = alloc(40); // struct ifreq {char name[16]; union {short flags; ...}}
  ifr.set(new TextEncoder().encode(ifname).subarray(0, IFNAMSIZ - 1), 0);
  ioctl(fd, SIOCGIFFLAGS, ifr, `ioctl(SIOCGIFFLAGS, ${ifname})`);
  return view(ifr).getUint16(16, true);
}
