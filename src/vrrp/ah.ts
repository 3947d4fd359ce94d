/**
 * IPsec AH for VRRPv2 as keepalived does it (RFC 2402, HMAC-MD5-96): the 24-byte AH header,
 * the ICV over the IPv4 header with mutable fields zeroed + AH (ICV zeroed) + the VRRP PDU,
 * and the receive checks (ICV, SPI == source, anti-replay sequence number).
 */

import { createHmac, timingSafeEqual } from "node:crypto";

export const AH_HEADER_LEN = 24;
export const AH_ICV_LEN = 12;
/** AH length in 32-bit words minus 2: (24 / 4) − 2. */
export const AH_PAYLOAD_LEN = 4;
/** keepalived stops incrementing the sequence number past this value. */
export const AH_SEQ_MAX = 0xfffffffd;

/** A decoded AH header. */
export interface AhHeader {
  nextHeader: number;
  payloadLen: number;
  reserved: number;
  /** Security Parameters Index; keepalived puts the sender's IPv4 source address here. */
  spi: number;
  seq: number;
  icv: Uint8Array;
}

/** The result of checking a received AH packet. */
export type AhCheck =
  | { ok: true; seq: number }
  | { ok: false; failure: "icv" | "spi" | "seq"; message: string };

/** Encodes an AH header with the ICV zeroed (signAh fills it in). */
export function encodeAhHeader(nextHeader: number, spi: number, seq: number): Uint8Array {
  const b = new Uint8Array(AH_HEADER_LEN);
  const dv = new DataView(b.buffer);
  b[0] = nextHeader;
  b[1] = AH_PAYLOAD_LEN;
  dv.setUint32(4, spi >>> 0);
  dv.setUint32(8, seq >>> 0);
  return b;
}

/** Decodes the AH header at `offset`; null if the bytes are too short. */
export function decodeAhHeader(data: Uint8Array, offset: number): AhHeader | null {
  if (offset < 0 || data.length < offset + AH_HEADER_LEN) return null;
  const dv = new DataView(data.buffer, data.byteOffset + offset, AH_HEADER_LEN);
  return {
    nextHeader: data[offset]!, payloadLen: data[offset + 1]!, reserved: dv.getUint16(2),
    spi: dv.getUint32(4), seq: dv.getUint32(8), icv: data.slice(offset + 12, offset + AH_HEADER_LEN),
  };
}

/**
 * The 12-byte ICV of `packet` = IPv4 header (`ipHeaderLen` bytes) + AH + VRRP PDU, exactly
 * that long. MAC input: TOS, fragment field and header checksum zeroed, TTL zeroed only for
 * unicast (keepalived keeps 255 for multicast), AH ICV zeroed; HMAC-MD5 keyed with `key`.
 */
export function computeAhIcv(packet: Uint8Array, ipHeaderLen: number, key: Uint8Array, unicast: boolean): Uint8Array {
  const input = packet.slice();
  input[1] = 0; // TOS
  input[6] = input[7] = 0; // flags + fragment offset
  input[10] = input[11] = 0; // header checksum
  if (unicast) input[8] = 0; // TTL
  input.fill(0, ipHeaderLen + 12, ipHeaderLen + AH_HEADER_LEN);
  return new Uint8Array(createHmac("md5", key).update(input).digest().subarray(0, AH_ICV_LEN));
}

/** Writes the ICV into the AH header of a complete IPv4+AH+VRRP packet, in place. */
export function signAh(packet: Uint8Array, ipHeaderLen: number, key: Uint8Array, unicast: boolean): void {
  packet.set(computeAhIcv(packet, ipHeaderLen, key, unicast), ipHeaderLen + 12);
}

/**
 * Checks a received IPv4+AH+VRRP packet (trimmed to its real length) the way keepalived
 * does: ICV (constant-time), then SPI == IP source, then seq > `lastSeq`. On success the
 * caller records the returned seq as the instance's last accepted one.
 */
export function verifyAh(packet: Uint8Array, ipHeaderLen: number, key: Uint8Array, unicast: boolean, lastSeq: number, iname = ""): AhCheck {
  const ah = decodeAhHeader(packet, ipHeaderLen);
  if (!ah || packet.length < 20) return { ok: false, failure: "icv", message: `(${iname}) IPSEC-AH : packet too short` };
  const want = computeAhIcv(packet, ipHeaderLen, key, unicast);
  if (!timingSafeEqual(want, ah.icv)) {
    return { ok: false, failure: "icv", message: `(${iname}) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !` };
  }
  const saddr = new DataView(packet.buffer, packet.byteOffset).getUint32(12);
  if (ah.spi !== saddr) {
    return { ok: false, failure: "spi", message: `IPSEC AH : invalid IPSEC SPI value. ${ah.spi} and expect ${saddr}` };
  }
  if (!(ah.seq > lastSeq)) {
    return { ok: false, failure: "seq", message: `(${iname}) IPSEC-AH : sequence number ${ah.seq} already processed. Packet dropped. Local(${lastSeq})` };
  }
  return { ok: true, seq: ah.seq };
}

/** The sequence number for the next advert: +1 until it passes AH_SEQ_MAX, then held (keepalived flags a cycle). */
export function nextAhSeq(seq: number): number {
  return seq > AH_SEQ_MAX ? seq : seq + 1;
}
