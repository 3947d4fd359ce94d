/** LVS blocks: virtual_server_group, virtual_server, real_server and the checkers (reference §1.12–1.13). */
import { type BlockSpec, type FieldSpec, type Kind, type Rec, block, flag, headed, lines, list, named, one, record, repeated, script } from "./kinds.ts";
import { integer, kw, seconds, userGroup, weightWithReverse } from "./common.ts";
import { ifname, int, ip, num, oneOf, pattern, port, str } from "./scalar.ts";

export const SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"] as const;

const lvsMethod = () =>
  record(
    [
      { name: "method", scalar: oneOf(["NAT", "DR", "TUN"], true, "lb_kind") },
      { name: "type", option: "type", scalar: oneOf(["ipip", "gue", "gre"]) },
      { name: "port", option: "port", scalar: port() },
      { name: "nocsum", option: "nocsum", flag: true },
      { name: "csum", option: "csum", flag: true },
      { name: "remcsum", option: "remcsum", flag: true },
    ],
    { syntax: "NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]" },
  );

/** Keywords shared by every checker that opens a connection. */
const connectionKeywords: BlockSpec["keywords"] = {
  connect_ip: kw(one(ip()), "address to check (default: the real server's)"),
  connect_port: kw(one(port()), "port to check (default: the real server's)"),
  bindto: kw(one(ip()), "source address"),
  bind_port: kw(one(port()), "source port"),
  bind_if: kw(one(ifname()), "source interface (IPv6 link-local)"),
  connect_timeout: kw(seconds(0.001, 2147483), "connect timeout (s)", { default: 5 }),
  fwmark: kw(integer(0, 4294967295), "SO_MARK of the check's socket (policy routing, nft meta mark); not PING_CHECK, as keepalived"),
};
/** Keywords shared by every checker (keepalived's install_checker_common_keywords). */
const retryKeywords: BlockSpec["keywords"] = {
  retry: kw(integer(0, 2147483647), "retries before a failure counts"),
  delay_before_retry: kw(seconds(0, 2147483), "seconds between retries"),
  warmup: kw(seconds(0, 2147483), "random delay before the first check (default: delay_loop)"),
  delay_loop: kw(seconds(0.001, 2147483), "seconds between checks"),
  alpha: kw(flag(), "start DOWN until the first success"),
  log_all_failures: kw(flag(), "log every failed check"),
};

const checker = (name: string, own: BlockSpec["keywords"], connection = true, aliases?: Record<string, string>): BlockSpec => ({
  name,
  keywords: { ...(connection ? connectionKeywords : {}), ...retryKeywords, ...own },
  aliases,
});

const url: BlockSpec = {
  name: "url",
  keywords: {
    path: kw(one(str()), "request path"),
    digest: kw(one(pattern(/^[0-9a-fA-F]{32}$/, "an MD5 digest (32 hex digits)")), "expected MD5 of the body (see `vipd genhash`)"),
    status_code: kw(list(pattern(/^\d{3}(-\d{3})?$/, "a status code or range NNN-NNN")), "accepted status codes (default 200-299)"),
    virtualhost: kw(one(str()), "Host header for this url"),
    regex: kw(one(str()), "regular expression the body must match"),
    regex_no_match: kw(flag(), "the body must NOT match regex"),
    regex_options: kw(list(str()), "PCRE2 options"),
    regex_min_offset: kw(integer(0, 2147483647), "start of the regex search"),
    regex_max_offset: kw(integer(0, 2147483647), "end of the regex search"),
    regex_stack: kw(record([{ name: "start", scalar: int(0, 2147483647) }, { name: "max", scalar: int(0, 2147483647) }], { syntax: "START MAX" }), "PCRE2 JIT stack", { status: "ignored", note: "vipd's regex engine needs no JIT stack" }),
    tls_compliant: kw(flag(), "close TLS cleanly"),
  },
};

const httpKeywords: BlockSpec["keywords"] = {
  url: kw(repeated(url), "a URL to fetch (repeatable)"),
  virtualhost: kw(one(str()), "Host header"),
  http_protocol: kw(one(oneOf(["1.0", "1.0C", "1.1"])), "HTTP version (1.0C = 1.0 with Connection: close)", { default: "1.0" }),
  enable_sni: kw(flag(), "send SNI (SSL_GET)"),
  sni_name: kw(one(str()), "SNI name (default: virtualhost)"),
  fast_recovery: kw(flag(), "re-check all urls at once after a failure"),
  tls_compliant: kw(flag(), "close TLS cleanly"),
};

export const checkers: Record<string, BlockSpec> = {
  TCP_CHECK: checker("TCP_CHECK", {}),
  HTTP_GET: checker("HTTP_GET", httpKeywords, true, { nb_get_retry: "retry" }),
  SSL_GET: checker("SSL_GET", httpKeywords, true, { nb_get_retry: "retry" }),
  MISC_CHECK: checker("MISC_CHECK", {
    misc_path: kw(script(), "the check command; exit 0 = up"),
    misc_timeout: kw(seconds(0.001, 2147483), "seconds before the command is killed (default: delay_loop)"),
    misc_dynamic: kw(flag(), "exit codes 2..255 set the weight to code-2"),
    user: kw(userGroup(), "run as this user"),
  }, false),
  SMTP_CHECK: checker("SMTP_CHECK", {
    helo_name: kw(one(str()), "HELO name", { default: "smtpchecker.keepalived.org" }),
    host: kw(repeated({ name: "host", keywords: { ...connectionKeywords } }), "legacy per-host sub-block", { status: "deprecated", note: "use one SMTP_CHECK per host" }),
  }),
  DNS_CHECK: checker("DNS_CHECK", {
    type: kw(one(oneOf(["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"])), "query type", { default: "SOA" }),
    name: kw(one(str()), "query name", { default: "." }),
  }),
  UDP_CHECK: checker("UDP_CHECK", {
    payload: kw(one(pattern(/^[0-9a-fA-F]*$/, "hex bytes")), "datagram to send (hex)"),
    require_reply: kw(record([{ name: "pattern", scalar: pattern(/^[0-9a-fA-FxX]*$/, "hex bytes (X = any nibble)"), optional: true }], { syntax: "[HEX]" }), "a reply must arrive (and start with HEX)"),
    min_reply_length: kw(integer(0, 65535), "shortest accepted reply", { default: 0 }),
    max_reply_length: kw(integer(0, 65535), "longest accepted reply", { default: 255 }),
  }),
  PING_CHECK: checker("PING_CHECK", {}),
  FILE_CHECK: {
    name: "FILE_CHECK",
    keywords: {
      track_file: kw(one(str()), "the track_file to follow"),
      weight: kw(weightWithReverse(2147483647), "multiplier of the file's value"),
    },
  },
  BFD_CHECK: {
    name: "BFD_CHECK",
    keywords: {
      name: kw(one(str()), "the bfd_instance to follow"),
      alpha: kw(flag(), "start DOWN until the session is up"),
    },
  },
};

const checkerKeywords: BlockSpec["keywords"] = Object.fromEntries(
  Object.entries(checkers).map(([k, spec]) => [
    k,
    kw(repeated(spec), `${k} health check (repeatable)`),
  ]),
);

const timingKeywords: BlockSpec["keywords"] = {
  retry: retryKeywords.retry,
  delay_before_retry: retryKeywords.delay_before_retry,
  warmup: retryKeywords.warmup,
  delay_loop: kw(seconds(0.001, 2147483), "seconds between checks", { default: 60 }),
  connect_timeout: connectionKeywords.connect_timeout,
  alpha: retryKeywords.alpha,
  inhibit_on_failure: kw(flag(), "set weight 0 instead of removing failed real servers"),
  smtp_alert: kw(flag(), "email on state changes"),
  virtualhost: kw(one(str()), "default Host header for HTTP checks"),
  snmp_name: kw(one(str()), "SNMP name", { status: "ignored", note: "SNMP is not supported" }),
};

export const realServer: BlockSpec = {
  name: "real_server",
  keywords: {
    weight: kw(integer(0, 2147483647), "IPVS weight", { default: 1 }),
    lvs_method: kw(lvsMethod(), "forwarding method for this real server"),
    uthreshold: kw(integer(0, 2147483647), "upper connection threshold"),
    lthreshold: kw(integer(0, 2147483647), "lower connection threshold"),
    notify_up: kw(script(), "script run when the real server comes up"),
    notify_down: kw(script(), "script run when the real server goes down"),
    ...timingKeywords,
    ...checkerKeywords,
  },
  aliases: { lb_kind: "lvs_method" },
};

const hostPort: FieldSpec[] = [
  { name: "ip", scalar: ip() },
  { name: "port", scalar: port(), optional: true },
];

export const virtualServer: BlockSpec = {
  name: "virtual_server",
  keywords: {
    ip_family: kw(one(oneOf(["inet", "inet6"])), "family of a fwmark virtual server"),
    lvs_sched: kw(one(oneOf(SCHEDULERS, false, "scheduler")), "IPVS scheduler", { default: "wlc" }),
    hashed: kw(flag(), "IP_VS_SVC_F_HASHED"),
    ops: kw(flag(), "one-packet scheduling (UDP)"),
    "flag-1": kw(flag(), "scheduler flag 1"),
    "flag-2": kw(flag(), "scheduler flag 2"),
    "flag-3": kw(flag(), "scheduler flag 3"),
    "sh-port": kw(flag(), "sh: include the port in the hash"),
    "sh-fallback": kw(flag(), "sh: fall back when the server is unavailable"),
    "mh-port": kw(flag(), "mh: include the port in the hash"),
    "mh-fallback": kw(flag(), "mh: fall back when the server is unavailable"),
    lvs_method: kw(lvsMethod(), "forwarding method", { default: { method: "NAT" } }),
    persistence_engine: kw(one(str()), "persistence engine (sip)"),
    persistence_timeout: kw(record([{ name: "timeout", scalar: int(1, 2147483647), optional: true }], { syntax: "[SECONDS]" }), "persistence (bare = 360 s)"),
    persistence_granularity: kw(one(str()), "persistence netmask or prefix length"),
    protocol: kw(one(oneOf(["TCP", "UDP", "SCTP"])), "protocol of an address virtual server"),
    ha_suspend: kw(flag(), "suspend checkers while the VIP is not local"),
    omega: kw(flag(), "run quorum_down/notify_down at shutdown"),
    quorum_up: kw(script(), "script run when quorum is gained"),
    quorum_down: kw(script(), "script run when quorum is lost"),
    quorum: kw(integer(1, 2147483647), "minimum total weight of alive real servers", { default: 1 }),
    hysteresis: kw(integer(0, 2147483647), "quorum hysteresis", { default: 0 }),
    weight: kw(integer(1, 65535), "weight of this virtual server within its group"),
    sorry_server: kw(record(hostPort, { syntax: "IP [PORT]" }), "server used when quorum is lost"),
    sorry_server_inhibit: kw(flag(), "inhibit the sorry server instead of removing it"),
    sorry_server_lvs_method: kw(lvsMethod(), "forwarding method of the sorry server"),
    real_server: kw(headed(hostPort, realServer, "IP [PORT] { ... }"), "a real server (repeatable)"),
    ...timingKeywords,
  },
  aliases: { lb_algo: "lvs_sched", lb_kind: "lvs_method" },
};

/** `virtual_server IP [PORT] | fwmark N | group NAME` */
const vsHeader: FieldSpec[] = [
  { name: "ip", scalar: ip(), optional: true },
  { name: "port", scalar: port(), optional: true },
  { name: "fwmark", option: "fwmark", scalar: int(1, 4294967295) },
  { name: "group", option: "group", scalar: str() },
];

const vsgEntry = lines<Rec>(
  [
    { name: "address", scalar: pattern(/^([0-9.]+(-\d+(\.\d+){0,3})?|[0-9a-fA-F:]+(-[0-9a-fA-F]+)?|[0-9a-fA-F:.]+\/\d+)$/, "IP, IP-RANGE or PREFIX/LEN"), optional: true },
    { name: "port", scalar: port(), optional: true },
    { name: "fwmark", option: "fwmark", scalar: int(1, 4294967295) },
    { name: "family", scalar: oneOf(["inet", "inet6"]), optional: true },
  ],
  "IP|A.B.C.D-E|PREFIX/LEN [PORT] | fwmark N [inet|inet6]",
);

/** `virtual_server_group NAME { entries }`: a named list of member lines. */
function namedLines(entry: Kind<Rec[]>): Kind<Record<string, Rec[]>> {
  return {
    syntax: `NAME ${entry.syntax}`,
    yaml: `a mapping NAME: ${entry.yaml}`,
    repeat: "merge",
    keyedByName: true,
    fromConf(st, ctx) {
      const name = st.args[0];
      if (!name) {
        ctx.diags.error(st.keyword.pos, `'${st.keyword.text}' needs a name`, "a name before '{'");
        return undefined;
      }
      const v = entry.fromConf({ ...st, args: st.args.slice(1) }, ctx);
      return v ? { [name.text]: v } : undefined;
    },
    fromYaml(n, ctx) {
      if (n.kind !== "map") {
        ctx.diags.error(n.pos, "expected a mapping of NAME: [entries]", "a mapping");
        return undefined;
      }
      const out: Record<string, Rec[]> = {};
      for (const e of n.entries) {
        const v = entry.fromYaml(e.node, ctx);
        if (v) out[e.key] = v;
      }
      return out;
    },
    combine: (a, b) => ({ ...a, ...b }),
    toConf: (v) => Object.entries(v).map(([name, list]) => ({ args: [name], children: entry.toConf(list)[0].children })),
    toYaml: (v) => Object.fromEntries(Object.entries(v).map(([k, l]) => [k, entry.toYaml(l)])),
    jsonSchema: () => ({ type: "object", additionalProperties: entry.jsonSchema() }),
  };
}

const ssl: BlockSpec = {
  name: "SSL",
  keywords: {
    password: kw(one(str()), "password of the private key"),
    ca: kw(one(str()), "CA certificate file"),
    certificate: kw(one(str()), "client certificate file"),
    key: kw(one(str()), "client key file"),
  },
};

export const bfdInstance: BlockSpec = {
  name: "bfd_instance",
  keywords: {
    source_ip: kw(one(ip()), "local address"),
    neighbor_ip: kw(one(ip()), "peer address"),
    min_rx: kw(one(num(1, 4294967, "ms, up to 3 decimals")), "required minimum receive interval (ms)", { default: 10 }),
    min_tx: kw(one(num(1, 4294967, "ms, up to 3 decimals")), "desired minimum transmit interval (ms)", { default: 10 }),
    idle_tx: kw(one(num(1, 4294967, "ms, up to 3 decimals")), "transmit interval while down (ms)", { default: 1000 }),
    multiplier: kw(integer(1, 255), "detection multiplier", { default: 5 }),
    passive: kw(flag(), "do not initiate"),
    ttl: kw(integer(1, 255), "TTL sent (IPv4 default 255); received packets need TTL ≥ ttl − max_hops", { default: 255 }),
    hoplimit: kw(integer(1, 255), "hop limit sent (IPv6 default 64); received packets need ≥ hoplimit − max_hops", { default: 64 }),
    max_hops: kw(integer(0, 255), "hops a received packet may have crossed (capped at ttl; 255 with ttl 255 = no check)", { default: 0 }),
    multihop: kw(flag(), "multihop BFD (port 4784)"),
    weight: kw(weightWithReverse(253), "default weight for track_bfd"),
    vrrp: kw(flag(), "deliver events to VRRP only"),
    checker: kw(flag(), "deliver events to checkers only"),
  },
  aliases: { neighbour_ip: "neighbor_ip" },
};

export const lvsRootKeywords: BlockSpec["keywords"] = {
  virtual_server_group: kw(namedLines(vsgEntry), "a named group of addresses sharing real servers"),
  virtual_server: kw(headed(vsHeader, virtualServer, "IP [PORT] | fwmark N | group NAME { ... }"), "an IPVS virtual server"),
  SSL: kw(block(ssl), "TLS client context for SSL_GET: client certificate and key; the server is not verified, as keepalived"),
  bfd_instance: kw(named(bfdInstance), "a BFD session (RFC 5880/5881 asynchronous mode, no echo, no authentication)"),
};
