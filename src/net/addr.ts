/** IPv4/IPv6/MAC addresses: text ⇄ bytes, canonical text, ordering and prefix math. No I/O. */

export type IpFamily = "inet" | "inet6";

/** An IP address as bytes (4 or 16, network order) with its family. */
export interface IpAddr {
  family: IpFamily;
  bytes: Uint8Array;
}

/** An address with a prefix length, as written "192.0.2.100/24". */
export interface IpPrefix extends IpAddr {
  prefixLen: number;
}

const DEC_OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

/** Parses dotted-quad IPv4 text ("192.0.2.1") into 4 bytes; null if not exactly that form. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!DEC_OCTET.test(p)) return null;
    out[i] = Number(p);
  }
  return out;
}

/** Parses IPv6 text (RFC 4291 §2.2 forms, "::", embedded IPv4 tail) into 16 bytes; null if invalid. A "%zone" suffix is rejected. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45 || text.includes("%")) return null;
  let head = text;
  let tailV4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.indexOf(".", lastColon) > lastColon) {
    tailV4 = parseIPv4(text.slice(lastColon + 1));
    if (!tailV4) return null;
    // keep the colon so "::1.2.3.4" still splits around "::"
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const dbl = head.indexOf("::");
  if (dbl !== head.lastIndexOf("::")) return null;
  const groupsOf = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = groupsOf(head.slice(0, dbl));
    const right = groupsOf(head.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return null;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = groupsOf(head);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  if (tailV4) out.set(tailV4, 12);
  return out;
}

/** Parses IPv4 or IPv6 text into bytes with its family; null if neither. */
export function parseIp(text: string): IpAddr | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: "inet", bytes: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { family: "inet6", bytes: v6 };
  return null;
}

/** Formats 4 bytes at `offset` as dotted-quad text. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Formats 16 bytes at `offset` as canonical RFC 5952 text (lower case, longest zero run ≥ 2 compressed, first on ties). */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Formats 4 or 16 bytes as IPv4 or IPv6 text. */
export function formatIp(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/** Returns the canonical text of an address ("2001:DB8:0::1" → "2001:db8::1"), or null if it does not parse. */
export function canonicalIp(text: string): string | null {
  const a = parseIp(text);
  return a ? formatIp(a.bytes) : null;
}

/** Compares two addresses of the same length as big-endian integers (keepalived's addr_cmp): <0, 0 or >0. */
export function compareAddr(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** True when both byte arrays hold the same address. */
export function addrEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareAddr(a, b) === 0;
}

/** True for 224.0.0.0/4 or ff00::/8. */
export function isMulticast(bytes: Uint8Array): boolean {
  return bytes.length === 4 ? (bytes[0]! & 0xf0) === 0xe0 : bytes[0] === 0xff;
}

/** True for fe80::/10. */
export function isLinkLocal6(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80;
}

/** Parses "addr" or "addr/len"; a missing length means a host prefix (32 or 128). Null if invalid. */
export function parsePrefix(text: string): IpPrefix | null {
  const slash = text.indexOf("/");
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return null;
  const max = addr.bytes.length * 8;
  if (slash < 0) return { ...addr, prefixLen: max };
  const lenText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText)) return null;
  const prefixLen = Number(lenText);
  if (prefixLen > max) return null;
  return { ...addr, prefixLen };
}

/** The netmask of `prefixLen` bits for an address of `byteLen` bytes (4 or 16). */
export function prefixMask(byteLen: number, prefixLen: number): Uint8Array {
  const out = new Uint8Array(byteLen);
  for (let i = 0; i < byteLen; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - 8 * i));
    out[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** The network address: `bytes` with all bits past `prefixLen` cleared. */
export function networkOf(bytes: Uint8Array, prefixLen: number): Uint8Array {
  const mask = prefixMask(bytes.length, prefixLen);
  return bytes.map((b, i) => b & mask[i]!);
}

/** The IPv4 broadcast address of a prefix (all host bits set). */
export function broadcastOf(bytes: Uint8Array, prefixLen: number): Uint8Array {
  const mask = prefixMask(bytes.length, prefixLen);
  return bytes.map((b, i) => (b | ~mask[i]!) & 0xff);
}

/** True when `addr` lies inside `net`/`prefixLen` (same family required). */
export function inPrefix(addr: Uint8Array, net: Uint8Array, prefixLen: number): boolean {
  if (addr.length !== net.length) return false;
  return addrEqual(networkOf(addr, prefixLen), networkOf(net, prefixLen));
}

/** The prefix length of a contiguous netmask ("255.255.255.0" bytes → 24); null if not contiguous. */
export function maskToPrefixLen(mask: Uint8Array): number | null {
  let len = 0;
  let seenZero = false;
  for (const b of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      if ((b >> bit) & 1) {
        if (seenZero) return null;
        len++;
      } else seenZero = true;
    }
  }
  return len;
}

/** Parses a MAC address "02:00:00:00:00:0b" (also '-' separated) into 6 bytes; null if invalid. */
export function parseMac(text: string): Uint8Array | null {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6) return null;
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(parts[i]!)) return null;
    out[i] = parseInt(parts[i]!, 16);
  }
  return out;
}

/** Formats 6 bytes at `offset` as lower-case colon-separated MAC text. */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(bytes[offset + i]!.toString(16).padStart(2, "0"));
  return out.join(":");
}
