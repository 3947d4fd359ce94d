/**
 * A minimal classic-pcap reader for test fixtures: global header, records, and the
 * link-layer header of Ethernet (1), Linux cooked v1 (113) and v2 (276) captures.
 */

import { readFileSync } from "node:fs";

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

export interface PcapRecord {
  tsSec: number;
  tsFrac: number;
  /** Bytes as captured (may be shorter than origLen when the snap length cut it). */
  data: Uint8Array;
  origLen: number;
}

export interface Pcap {
  linkType: number;
  snapLen: number;
  nanosecond: boolean;
  records: PcapRecord[];
}

/** A frame with its link-layer header removed. */
export interface LinkFrame {
  /** Ethernet destination/source MACs (null for cooked captures, which only keep the source). */
  dst: Uint8Array | null;
  src: Uint8Array | null;
  etherType: number;
  /** The network-layer packet (IPv4, IPv6, ARP body). */
  payload: Uint8Array;
}

/** Parses a classic pcap file (either byte order, µs or ns timestamps). Throws on a malformed file. */
export function parsePcap(bytes: Uint8Array): Pcap {
  if (bytes.length < 24) throw new Error("pcap: file shorter than its global header");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLE = dv.getUint32(0, true);
  let le: boolean;
  let nanosecond = false;
  if (magicLE === 0xa1b2c3d4) le = true;
  else if (magicLE === 0xa1b23c4d) { le = true; nanosecond = true; }
  else if (dv.getUint32(0, false) === 0xa1b2c3d4) le = false;
  else if (dv.getUint32(0, false) === 0xa1b23c4d) { le = false; nanosecond = true; }
  else throw new Error(`pcap: bad magic 0x${magicLE.toString(16)}`);
  const snapLen = dv.getUint32(16, le);
  const linkType = dv.getUint32(20, le) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let off = 24;
  while (off < bytes.length) {
    if (off + 16 > bytes.length) throw new Error("pcap: truncated record header");
    const inclLen = dv.getUint32(off + 8, le);
    const rec: PcapRecord = {
      tsSec: dv.getUint32(off, le),
      tsFrac: dv.getUint32(off + 4, le),
      origLen: dv.getUint32(off + 12, le),
      data: bytes.subarray(off + 16, off + 16 + inclLen),
    };
    if (rec.data.length !== inclLen) throw new Error("pcap: truncated record data");
    records.push(rec);
    off += 16 + inclLen;
  }
  return { linkType, snapLen, nanosecond, records };
}

/** Reads and parses a pcap file from disk. */
export function readPcap(path: string): Pcap {
  return parsePcap(new Uint8Array(readFileSync(path)));
}

/** Strips the link-layer header of one record (VLAN tags on Ethernet are skipped). */
export function linkFrame(linkType: number, data: Uint8Array): LinkFrame {
  const be16 = (o: number): number => (data[o]! << 8) | data[o + 1]!;
  if (linkType === LINKTYPE_ETHERNET) {
    let off = 12;
    let etherType = be16(off);
    while (etherType === 0x8100 || etherType === 0x88a8) {
      off += 4;
      etherType = be16(off);
    }
    return { dst: data.subarray(0, 6), src: data.subarray(6, 12), etherType, payload: data.subarray(off + 2) };
  }
  if (linkType === LINKTYPE_LINUX_SLL) {
    // packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
    const alen = be16(4);
    return { dst: null, src: data.subarray(6, 6 + Math.min(alen, 8)), etherType: be16(14), payload: data.subarray(16) };
  }
  if (linkType === LINKTYPE_LINUX_SLL2) {
    // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8)
    const alen = data[11]!;
    return { dst: null, src: data.subarray(12, 12 + Math.min(alen, 8)), etherType: be16(0), payload: data.subarray(20) };
  }
  throw new Error(`pcap: unsupported link type ${linkType}`);
}
