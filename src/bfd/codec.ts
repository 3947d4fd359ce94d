/**
 * BFD Control packet codec (RFC 5880 §4.1, no authentication section): encode, and decode
 * with the packet-only reception checks of §6.8.6 plus keepalived's extra sanity checks
 * (length equal to the datagram, not Poll and Final together, Diag ≤ 8). Checks that need a
 * session (Your Discriminator lookup, the A bit, the received TTL) live in session.ts.
 * Intervals are in microseconds, as on the wire.
 */

/** bfd.SessionState / the Sta field. */
export const BfdState = { AdminDown: 0, Down: 1, Init: 2, Up: 3 } as const;
export type BfdState = (typeof BfdState)[keyof typeof BfdState];

/** The Diag field (RFC 5880 §4.1). */
export const BfdDiag = {
  None: 0, ControlDetectionTimeExpired: 1, EchoFailed: 2, NeighborSignaledDown: 3, ForwardingPlaneReset: 4,
  PathDown: 5, ConcatenatedPathDown: 6, AdministrativelyDown: 7, ReverseConcatenatedPathDown: 8,
} as const;
export type BfdDiag = (typeof BfdDiag)[keyof typeof BfdDiag];

/** keepalived's names for the states (BFD_STATE_STR). */
export const STATE_NAMES = ["AdminDown", "Down", "Init", "Up"] as const;

/** keepalived's names for the diagnostics (BFD_DIAG_STR). */
export const DIAG_NAMES = [
  "No Diagnostic", "Control Detection Time Expired", "Echo Function Failed", "Neighbor Signaled Session Down",
  "Forwarding Plane Reset", "Path Down", "Concatenated Path Down", "Administratively Down",
  "Reverse Concatenated Path Down",
] as const;

/** The mandatory section's length; vipd never sends an authentication section. */
export const BFD_CONTROL_LENGTH = 24;
export const BFD_VERSION = 1;

/** One BFD Control packet, fields named as in RFC 5880 §4.1. */
export interface BfdControl {
  version: number;
  diag: number;
  state: BfdState;
  poll: boolean;
  final: boolean;
  /** C: Control Plane Independent. */
  controlPlaneIndependent: boolean;
  /** A: Authentication Present. */
  authPresent: boolean;
  demand: boolean;
  multipoint: boolean;
  detectMult: number;
  length: number;
  myDiscriminator: number;
  yourDiscriminator: number;
  /** µs */
  desiredMinTxInterval: number;
  /** µs */
  requiredMinRxInterval: number;
  /** µs */
  requiredMinEchoRxInterval: number;
}

/** Why a received packet was discarded (one counter each in the runtime's statistics). */
export type BfdDecodeError =
  | "too-short" | "length-mismatch" | "bad-version" | "zero-detect-mult" | "multipoint" | "zero-my-discriminator"
  | "zero-your-discriminator" | "poll-and-final" | "bad-diag";

export type BfdDecodeResult = { ok: true; packet: BfdControl } | { ok: false; error: BfdDecodeError };

/** Encodes a Control packet (always 24 bytes: the Length field is written as given). */
export function encodeBfd(p: BfdControl): Uint8Array {
  const b = new Uint8Array(BFD_CONTROL_LENGTH);
  const v = new DataView(b.buffer);
  b[0] = ((p.version & 7) << 5) | (p.diag & 0x1f);
  b[1] = ((p.state & 3) << 6) | (p.poll ? 0x20 : 0) | (p.final ? 0x10 : 0) | (p.controlPlaneIndependent ? 0x08 : 0) |
    (p.authPresent ? 0x04 : 0) | (p.demand ? 0x02 : 0) | (p.multipoint ? 0x01 : 0);
  b[2] = p.detectMult & 0xff;
  b[3] = p.length & 0xff;
  v.setUint32(4, p.myDiscriminator >>> 0);
  v.setUint32(8, p.yourDiscriminator >>> 0);
  v.setUint32(12, p.desiredMinTxInterval >>> 0);
  v.setUint32(16, p.requiredMinRxInterval >>> 0);
  v.setUint32(20, p.requiredMinEchoRxInterval >>> 0);
  return b;
}

/** Decodes and validates one received datagram; never throws. */
export function decodeBfd(data: Uint8Array): BfdDecodeResult {
  if (data.length < BFD_CONTROL_LENGTH) return { ok: false, error: "too-short" };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const packet: BfdControl = {
    version: data[0]! >> 5,
    diag: data[0]! & 0x1f,
    state: (data[1]! >> 6) as BfdState,
    poll: (data[1]! & 0x20) !== 0,
    final: (data[1]! & 0x10) !== 0,
    controlPlaneIndependent: (data[1]! & 0x08) !== 0,
    authPresent: (data[1]! & 0x04) !== 0,
    demand: (data[1]! & 0x02) !== 0,
    multipoint: (data[1]! & 0x01) !== 0,
    detectMult: data[2]!,
    length: data[3]!,
    myDiscriminator: v.getUint32(4),
    yourDiscriminator: v.getUint32(8),
    desiredMinTxInterval: v.getUint32(12),
    requiredMinRxInterval: v.getUint32(16),
    requiredMinEchoRxInterval: v.getUint32(20),
  };
  // RFC: Length < 24 (26 with A) or > payload → discard; keepalived wants it equal to the datagram
  if (packet.length !== data.length || packet.length < (packet.authPresent ? 26 : 24)) return { ok: false, error: "length-mismatch" };
  if (packet.version !== BFD_VERSION) return { ok: false, error: "bad-version" };
  if (packet.detectMult === 0) return { ok: false, error: "zero-detect-mult" };
  if (packet.multipoint) return { ok: false, error: "multipoint" };
  if (packet.myDiscriminator === 0) return { ok: false, error: "zero-my-discriminator" };
  if (packet.yourDiscriminator === 0 && packet.state !== BfdState.Down && packet.state !== BfdState.AdminDown)
    return { ok: false, error: "zero-your-discriminator" };
  if (packet.poll && packet.final) return { ok: false, error: "poll-and-final" };
  if (packet.diag > BfdDiag.ReverseConcatenatedPathDown) return { ok: false, error: "bad-diag" };
  return { ok: true, packet };
}
