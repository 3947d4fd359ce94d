/** Types shared by the VRRP codec, the state machine and the OS edge. */

export type VrrpVersion = 2 | 3;
/** Address family of an instance: IPv4 or IPv6. */
export type Family = "inet" | "inet6";

export const AUTH_NONE = 0;
export const AUTH_PASS = 1;
export const AUTH_AH = 2;
export type AuthType = typeof AUTH_NONE | typeof AUTH_PASS | typeof AUTH_AH;

/** A decoded VRRP advertisement (the VRRP PDU only; IP/AH fields are in RxMeta). */
export interface Advert {
  version: VrrpVersion;
  /** 1 = ADVERTISEMENT; anything else is counted as invalid_type_rcvd. */
  type: number;
  vrid: number;
  priority: number;
  /** Count IPvX Addrs field as sent (may differ from addresses.length only in malformed packets). */
  count: number;
  /** v2 only (0 for v3). */
  authType: number;
  /** The interval in centiseconds: v2's seconds field × 100, v3's 12-bit field. */
  adverIntCs: number;
  checksum: number;
  /** Textual addresses in packet order ("192.0.2.1", "2001:db8::1"). */
  addresses: string[];
  /** v2's 8 authentication bytes (zeros for none/AH); empty for v3. */
  authData: Uint8Array;
}

/** What the socket layer knows about a received packet besides its bytes. */
export interface RxMeta {
  family: Family;
  /** Source address of the IP packet. */
  src: string;
  /** Destination address (from the IPv4 header or IPV6_PKTINFO). */
  dst: string;
  ifindex: number;
  /** TTL (IPv4 header) or hop limit (IPV6_HOPLIMIT cmsg). */
  ttl: number;
}

/**
 * Per-instance counters. The first block uses keepalived's JSON stats names exactly
 * (reference §1.14) so existing exporters read them; the rest are vipd's own reasons
 * for dropping a packet, one per validation step of reference §2.6.
 */
export interface VrrpStats {
  advert_rcvd: number;
  advert_sent: number;
  become_master: number;
  release_master: number;
  packet_len_err: number;
  advert_interval_err: number;
  ip_ttl_err: number;
  invalid_type_rcvd: number;
  addr_list_err: number;
  invalid_authtype: number;
  authtype_mismatch: number;
  auth_failure: number;
  pri_zero_rcvd: number;
  pri_zero_sent: number;
  // vipd's own drop reasons
  version_err: number;
  checksum_err: number;
  vrid_err: number;
  mcast_mode_err: number;
  unicast_src_err: number;
  ah_seq_err: number;
  /** AH whose next header is not VRRP (keepalived ignores these silently). */
  ah_next_header_err: number;
  /** Dropped because we are the address owner with owner_ignore_adverts. */
  owner_ignored: number;
}

export type StatName = keyof VrrpStats;

export function newStats(): VrrpStats {
  return {
    advert_rcvd: 0, advert_sent: 0, become_master: 0, release_master: 0,
    packet_len_err: 0, advert_interval_err: 0, ip_ttl_err: 0, invalid_type_rcvd: 0,
    addr_list_err: 0, invalid_authtype: 0, authtype_mismatch: 0, auth_failure: 0,
    pri_zero_rcvd: 0, pri_zero_sent: 0,
    version_err: 0, checksum_err: 0, vrid_err: 0, mcast_mode_err: 0, unicast_src_err: 0, ah_seq_err: 0,
    ah_next_header_err: 0, owner_ignored: 0,
  };
}

/** VRRP states, numbered as keepalived's JSON dump numbers them. */
export const VrrpState = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3 } as const;
export type VrrpState = (typeof VrrpState)[keyof typeof VrrpState];
export const STATE_NAMES = ["INIT", "BACKUP", "MASTER", "FAULT"] as const;
