/** VRRP blocks: vrrp_instance, vrrp_sync_group, trackers, static addresses (reference §1.4–1.10). */
import { type BlockSpec, block, flag, list, lines, named, one, record, repeated, script, words } from "./kinds.ts";
import { addressLines, integer, kw, routeLines, ruleLines, scriptKw, seconds, trackLines, userGroup, weightWithReverse } from "./common.ts";
import { ifname, int, ip, mac, num, oneOf, str } from "./scalar.ts";

/** keepalived: "unknown state 'X', defaulting to BACKUP" — vipd makes it an error. */
const stateWord = {
  ...oneOf(["MASTER", "BACKUP"]),
  parse(word: string) {
    const r = oneOf(["MASTER", "BACKUP"]).parse(word);
    return r.ok ? r : { ok: false as const, expected: "MASTER or BACKUP", message: `'${word}' is not a valid state` };
  },
};

const LATER = "not implemented yet";
const NOT_PLANNED = "not planned";

const notifyKeywords = (who: string): BlockSpec["keywords"] => ({
  notify_master: scriptKw(`script run when the ${who} becomes MASTER`),
  notify_backup: scriptKw(`script run when the ${who} becomes BACKUP`),
  notify_fault: scriptKw(`script run when the ${who} enters FAULT`),
  notify_stop: scriptKw(`script run when the ${who} stops`),
  notify: scriptKw(`script run on every ${who} state change, with 4 extra arguments TYPE NAME STATE PRIORITY`),
});

const trackKeywords = (): BlockSpec["keywords"] => ({
  track_interface: kw(trackLines(253), "interfaces whose link state changes priority or causes FAULT"),
  track_script: kw(trackLines(253), "vrrp_scripts whose result changes priority or causes FAULT"),
  track_file: kw(trackLines(254), "track_files whose value changes priority"),
  track_process: kw(trackLines(254), "vrrp_track_processes whose quorum changes priority"),
  track_bfd: kw(trackLines(253), "bfd_instances whose state changes priority (weight 0: FAULT while the session is down)"),
});

const authentication: BlockSpec = {
  name: "authentication",
  keywords: {
    auth_type: kw(one(oneOf(["PASS", "AH"])), "VRRPv2 authentication: PASS (cleartext) or AH (IPsec AH HMAC-MD5-96)"),
    auth_pass: kw(one(str()), "the password (only the first 8 characters are used)"),
  },
};

const authHmac: BlockSpec = {
  name: "auth_hmac",
  keywords: {
    key: kw(lines([{ name: "id", scalar: int(0, 255) }, { name: "value", scalar: str() }], "ID KEY"), "keys by id"),
    active_key: kw(integer(0, 255), "key id used for sending"),
    time_window: kw(integer(1, 300), "anti-replay time window (s)"),
    anti_replay: kw(one(oneOf(["time", "monotonic"])), "anti-replay mode"),
    mode: kw(one(oneOf(["enforce", "permissive", "receive-only"])), "verification mode"),
  },
};

const useVmac = record(
  [
    { name: "ifname", scalar: ifname(), optional: true },
    { name: "ifname", option: "name", scalar: ifname() },
    { name: "mac", scalar: mac(), optional: true },
    { name: "group", option: "group", scalar: str() },
    { name: "netlink_notify_msg", option: "netlink_notify_msg", flag: true },
  ],
  { syntax: "[[name] IFNAME] [MAC] [netlink_notify_msg] [group G]" },
);

export const vrrpInstance: BlockSpec = {
  name: "vrrp_instance",
  keywords: {
    state: kw(one(stateWord), "initial wish: MASTER or BACKUP (default: MASTER if priority 255)"),
    interface: kw(one(ifname()), "interface the instance runs on"),
    virtual_router_id: kw(integer(1, 255), "VRID, unique per interface and family"),
    priority: kw(integer(1, 255), "base priority; 255 = address owner (default 100, or 255 with state MASTER)"),
    advert_int: kw(seconds(0.01, 255), "advert interval in seconds (v2: whole seconds; v3: centiseconds)", { default: 1 }),
    version: kw(integer(2, 3), "VRRP version (default vrrp_version; IPv6 uses 3)"),
    nopreempt: kw(flag(), "never preempt a lower-priority master"),
    preempt: kw(flag(), "preempt lower-priority masters (the default)"),
    preempt_delay: kw(seconds(0, 1000), "seconds to wait before preempting", { default: 0 }),
    virtual_ipaddress: kw(addressLines(), "addresses added on MASTER and listed in adverts (one deleted by someone else makes the MASTER step down for a new election, unless no_track)"),
    virtual_ipaddress_excluded: kw(addressLines(), "addresses added on MASTER but not listed in adverts"),
    no_virtual_ipaddress: kw(flag(), "the instance has no virtual addresses on purpose"),
    authentication: kw(block(authentication), "VRRPv2 authentication (PASS or AH)"),
    auth_hmac: kw(block(authHmac), "keepalived 2.4 HMAC-SHA256 authentication", { status: "not-implemented", note: NOT_PLANNED }),
    mcast_src_ip: kw(one(ip()), "source address of adverts (default: primary address of the interface)"),
    mcast_dst_ip: kw(one(ip()), "multicast group for this instance's adverts"),
    unicast_peer: kw(lines([
      { name: "address", scalar: ip() },
      { name: "min_ttl", option: "min_ttl", scalar: int(0, 255) },
      { name: "max_ttl", option: "max_ttl", scalar: int(0, 255) },
    ], "ADDR [min_ttl N] [max_ttl N]"), "send adverts by unicast to these peers"),
    unicast_ttl: kw(integer(0, 255), "TTL of unicast adverts"),
    unicast_fault_no_peer: kw(flag(), "FAULT instead of multicast when unicast_peer is empty"),
    check_unicast_src: kw(flag(), "drop unicast adverts from unlisted sources"),
    old_unicast_checksum: kw(record([{ name: "never", option: "never", flag: true }], { syntax: "[never]" }), "keepalived ≤1.3.6 unicast checksum", { status: "not-implemented", note: NOT_PLANNED }),
    track_src_ip: kw(flag(), "FAULT if the source address disappears"),
    dont_track_primary: kw(flag(), "do not go to FAULT when the instance's interface goes down"),
    ...trackKeywords(),
    use_vmac: kw(useVmac, "run on a macvlan (private mode) with the VRRP MAC 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID); VIPs, adverts and GARPs use it; deleted at stop (group and netlink_notify_msg have no effect)"),
    use_vmac_addr: kw(flag(), "use the VMAC address on the base interface", { status: "not-implemented", note: LATER }),
    vmac_xmit_base: kw(flag(), "send and receive adverts on the base interface, not the VMAC"),
    use_ipvlan: kw(list(str(), 0), "run on an ipvlan interface", { status: "not-implemented", note: NOT_PLANNED }),
    vrf: kw(one(ifname()), "VRF for unicast instances", { status: "not-implemented", note: NOT_PLANNED }),
    promote_secondaries: kw(flag(), "set promote_secondaries on the interface (restored at stop)"),
    virtual_routes: kw(routeLines(), "routes added on becoming MASTER and removed on leaving it (one deleted by someone else makes the MASTER step down, unless no_track)"),
    virtual_rules: kw(ruleLines(), "policy rules added on becoming MASTER and removed on leaving it (one deleted by someone else makes the MASTER step down, unless no_track)"),
    accept: kw(flag(), "accept packets to the VIPs when not the address owner (default)"),
    no_accept: kw(flag(), "drop packets to and from the VIPs while MASTER unless address owner (nftables)"),
    skip_check_adv_addr: kw(flag(), "skip the VIP-list check for adverts from the current master"),
    strict_mode: kw(flag(), "per-instance vrrp_strict"),
    v3_checksum_as_v2: kw(flag(), "VRRPv3 IPv4 checksum without pseudo-header"),
    ...notifyKeywords("instance"),
    notify_deleted: kw(record([{ name: "cmd", scalar: str(), optional: true }, { name: "user", scalar: str(), optional: true }, { name: "group", scalar: str(), optional: true }], { syntax: "[CMD [USER [GROUP]]]" }), "report DELETED instead of FAULT for instances removed by reload"),
    notify_master_rx_lower_pri: kw(script(), "script run when a MASTER receives a lower-priority advert"),
    smtp_alert: kw(flag(), "email on state changes"),
    notify_priority_changes: kw(flag(), "FIFO lines on priority changes"),
    garp_master_delay: kw(integer(0, 86400), "seconds until the second GARP burst (0 = none)"),
    garp_master_repeat: kw(integer(0, 65535), "GARP rounds per burst"),
    garp_master_refresh: kw(integer(0, 86400), "seconds between GARP refreshes (0 = off)"),
    garp_master_refresh_repeat: kw(integer(1, 65535), "GARP rounds per refresh"),
    garp_lower_prio_delay: kw(integer(0, 86400), "second-burst delay after a lower-priority advert"),
    garp_lower_prio_repeat: kw(integer(0, 65535), "GARP rounds after a lower-priority advert"),
    garp_extra_if: kw(record([{ name: "all", option: "all", flag: true }, { name: "interval", scalar: int(0, 86400) }], { syntax: "[all] SECONDS" }), "periodic GARPs on extra interfaces"),
    down_timer_adverts: kw(integer(1, 100), "adverts in Master_Down_Interval (RFC: 3)"),
    timer_expired_backup: kw(record([{ name: "priority", scalar: int(1, 255), optional: true }], { syntax: "[PRIORITY]" }), "a nopreempt MASTER steps down after a scheduling stall"),
    lower_prio_no_advert: kw(flag(), "do not answer a lower-priority advert"),
    higher_prio_send_advert: kw(flag(), "send one advert before yielding to a higher priority"),
    owner_ignore_adverts: kw(flag(), "an address owner ignores received adverts"),
    kernel_rx_buf_size: kw(integer(0, 2147483647), "socket receive buffer", { status: "ignored", note: "vipd sizes buffers itself" }),
    lvs_sync_daemon_interface: kw(one(ifname()), "old per-instance lvs_sync_daemon", { status: "deprecated", note: "use global_defs lvs_sync_daemon" }),
    native_ipv6: kw(flag(), "force IPv6", { status: "deprecated", note: "the family follows the addresses" }),
    linkbeat_use_polling: kw(flag(), "poll link state", { status: "deprecated", note: "use linkbeat_interfaces" }),
    debug: kw(integer(0, 4), "debug level", { status: "ignored", note: "use --log-detail" }),
  },
  aliases: {
    unicast_src_ip: "mcast_src_ip",
    thread_timer_expired: "timer_expired_backup",
    vmac_garp_intvl: "garp_extra_if",
  },
};

export const vrrpSyncGroup: BlockSpec = {
  name: "vrrp_sync_group",
  keywords: {
    group: kw(words(str("an instance name")), "member vrrp_instances"),
    ...trackKeywords(),
    ...notifyKeywords("group"),
    smtp_alert: kw(flag(), "email on group state changes"),
    notify_priority_changes: kw(flag(), "FIFO lines on priority changes"),
    sync_group_tracking_weight: kw(flag(), "allow non-zero tracker weights in members", { status: "ignored", note: "vipd always applies tracker weights in sync groups" }),
    global_tracking: kw(flag(), "allow non-zero tracker weights", { status: "deprecated", note: "use sync_group_tracking_weight" }),
  },
};

export const vrrpScript: BlockSpec = {
  name: "vrrp_script",
  keywords: {
    script: kw(script(), "the command; exit 0 = success"),
    interval: kw(seconds(0.001, 2147483), "seconds between runs", { default: 1 }),
    timeout: kw(seconds(0.001, 2147483), "seconds before a run is killed (default: interval)"),
    weight: kw(weightWithReverse(253), "priority adjustment; 0 = FAULT on failure", { default: { weight: 0 } }),
    rise: kw(integer(1, 2147483647), "successes needed to become OK", { default: 1 }),
    fall: kw(integer(1, 2147483647), "failures needed to become FAILED", { default: 1 }),
    user: kw(userGroup(), "run as this user (and group)"),
    init_fail: kw(flag(), "start in the failed state"),
  },
};

export const vrrpTrackProcess: BlockSpec = {
  name: "vrrp_track_process",
  keywords: {
    process: kw(list(str()), "process name, and optionally its parameters"),
    param_match: kw(record([{ name: "mode", scalar: oneOf(["initial", "partial"]), optional: true }], { syntax: "[initial|partial]" }), "how parameters are matched (bare: the command must have no parameters)"),
    weight: kw(weightWithReverse(254), "priority adjustment; 0 = FAULT when quorum is lost", { default: { weight: 0 } }),
    quorum: kw(integer(0, 65535), "minimum number of processes", { default: 1 }),
    quorum_max: kw(integer(0, 65535), "maximum number of processes"),
    delay: kw(seconds(0, 3600), "delay for both fork and terminate"),
    terminate_delay: kw(seconds(0, 3600), "delay before acting on quorum loss"),
    fork_delay: kw(seconds(0, 3600), "delay before acting on quorum gain"),
    full_command: kw(flag(), "match the full command line"),
  },
};

export const trackFile: BlockSpec = {
  name: "track_file",
  keywords: {
    file: kw(one(str()), "path of the file holding an integer"),
    weight: kw(weightWithReverse(254), "multiplier of the file's value", { default: { weight: 1 } }),
    init_file: kw(record([{ name: "value", scalar: int(-2147483648, 2147483647), optional: true }, { name: "overwrite", option: "overwrite", flag: true }], { syntax: "[VALUE] [overwrite]" }), "create the file at start"),
  },
};

export const garpGroup: BlockSpec = {
  name: "garp_group",
  keywords: {
    garp_interval: kw(seconds(0, 1), "minimum GARP spacing (s)"),
    gna_interval: kw(seconds(0, 1), "minimum NA spacing (s)"),
    interface: kw(one(ifname()), "interface of the group"),
    interfaces: kw(words(ifname()), "interfaces of the group"),
  },
};

export const trackGroup: BlockSpec = {
  name: "track_group",
  keywords: { group: kw(words(str("an instance name")), "instances put in FAULT if a tracked static entry is lost") },
};

export const linkbeatLines = () =>
  lines([{ name: "interface", scalar: ifname() }, { name: "method", scalar: oneOf(["MII", "ETHTOOL", "IOCTL"]), optional: true }], "IF [MII|ETHTOOL|IOCTL]");
export const upDownDelayLines = () =>
  lines([{ name: "interface", scalar: ifname() }, { name: "down_delay", scalar: num(0, 255) }, { name: "up_delay", scalar: num(0, 255), optional: true }], "IF DOWN_DELAY [UP_DELAY]");

export const vrrpRootKeywords: BlockSpec["keywords"] = {
  vrrp_instance: kw(named(vrrpInstance), "a VRRP instance"),
  vrrp_sync_group: kw(named(vrrpSyncGroup), "instances that change state together"),
  vrrp_script: kw(named(vrrpScript), "a tracked script"),
  vrrp_track_process: kw(named(vrrpTrackProcess), "a tracked process"),
  track_file: kw(named(trackFile), "a tracked file"),
  garp_group: kw(repeated(garpGroup), "GARP/NA pacing shared by a set of interfaces (instead of the global per-interface vrrp_garp_interval / vrrp_gna_interval; an interval the group does not set is 0)"),
  track_group: kw(named(trackGroup), "instances that go to FAULT while the interface of a static address, route or rule naming this group (track_group NAME) is down"),
  static_ipaddress: kw(addressLines(), "addresses installed at start, reinstated when someone deletes them (unless no_track), removed at stop"),
  static_routes: kw(routeLines(), "routes installed at start, reinstated when someone deletes them (unless no_track), removed at stop"),
  static_rules: kw(ruleLines(), "rules installed at start, reinstated when someone deletes them (unless no_track), removed at stop"),
  linkbeat_interfaces: kw(linkbeatLines(), "interfaces whose link state is polled", { status: "not-implemented", note: NOT_PLANNED }),
  interface_up_down_delays: kw(upDownDelayLines(), "debounce of link changes: once an interface was seen up, a down (up) change takes effect only after DOWN_DELAY (UP_DELAY) seconds and a change back cancels it; the down delay is capped at (down_timer_adverts - 1) x advert_int of the instances on it"),
};
