/** Line grammars shared by several blocks: addresses, routes, rules, tracker references. */
import { type FieldSpec, type KwSpec, type Kind, lines, one, record, script } from "./kinds.ts";
import { bool, host, ifname, int, ip, num, oneOf, pattern, str } from "./scalar.ts";

export const kw = <T>(kind: Kind<T>, doc: string, opts: Omit<KwSpec<T>, "kind" | "doc"> = {}): KwSpec<T> => ({ kind, doc, ...opts });

const lifetime = pattern(/^(\d+|forever)$/, "a number of seconds or 'forever'");
const brd = pattern(/^([0-9.]+|[+-])$/, "an IPv4 broadcast address, '+' or '-'");

/** `ADDR[/len] [brd X|+|-] [dev IF] [scope S] [label L] [peer P] [home] [-nodad] ...` */
export const addressFields: FieldSpec[] = [
  { name: "address", scalar: ip({ prefix: true }), doc: "the address, with /prefix (default /32 or /128)" },
  { name: "brd", option: ["brd", "broadcast"], scalar: brd },
  { name: "dev", option: "dev", scalar: ifname() },
  { name: "scope", option: "scope", scalar: oneOf(["global", "site", "link", "host", "nowhere"]) },
  { name: "label", option: "label", scalar: pattern(/^.{1,15}$/, "a label of at most 15 characters") },
  { name: "peer", option: "peer", scalar: ip({ prefix: true }) },
  { name: "preferred_lft", option: "preferred_lft", scalar: lifetime },
  { name: "track_group", option: "track_group", scalar: str() },
  { name: "home", option: "home", flag: true },
  { name: "nodad", option: "-nodad", flag: true },
  { name: "mngtmpaddr", option: "mngtmpaddr", flag: true },
  { name: "noprefixroute", option: "noprefixroute", flag: true },
  { name: "autojoin", option: "autojoin", flag: true },
  { name: "no_track", option: "no_track", flag: true },
  { name: "use_vmac", option: "use_vmac", flag: true },
];
export const addressLines = () => lines(addressFields, "ADDR[/LEN] [dev IF] [brd B] [scope S] [label L] ...");

const routeTypes = ["unicast", "blackhole", "unreachable", "prohibit", "throw", "local", "broadcast", "anycast", "multicast", "nat"] as const;
const prefixOrDefault = pattern(/^(default|[0-9a-fA-F:.]+(\/\d+)?)$/, "a prefix ADDR/LEN or 'default'");

/** The `ip route` grammar keepalived accepts (common options; exotic metrics kept as text). */
export const routeFields: FieldSpec[] = [
  { name: "type", scalar: oneOf(routeTypes), optional: true },
  { name: "to", scalar: prefixOrDefault, doc: "destination prefix" },
  { name: "to", option: "to", scalar: prefixOrDefault },
  { name: "src", option: "src", scalar: ip() },
  { name: "via", option: ["via", "gw"], scalar: ip() },
  { name: "dev", option: "dev", scalar: ifname() },
  { name: "scope", option: "scope", scalar: str() },
  { name: "table", option: "table", scalar: str() },
  { name: "metric", option: ["metric", "priority", "preference"], scalar: int(0, 4294967295) },
  { name: "tos", option: ["tos", "dsfield"], scalar: str() },
  { name: "protocol", option: ["protocol", "proto"], scalar: str() },
  { name: "mtu", option: "mtu", scalar: int(0, 65535) },
  { name: "advmss", option: "advmss", scalar: int(0, 65535) },
  { name: "hoplimit", option: "hoplimit", scalar: int(0, 255) },
  { name: "initcwnd", option: "initcwnd", scalar: int(0, 65535) },
  { name: "initrwnd", option: "initrwnd", scalar: int(0, 65535) },
  { name: "realms", option: "realms", scalar: str() },
  { name: "pref", option: "pref", scalar: oneOf(["low", "medium", "high"]) },
  { name: "expires", option: "expires", scalar: int(0, 4294967) },
  { name: "vrf", option: "vrf", scalar: ifname() },
  { name: "congctl", option: "congctl", scalar: str() },
  { name: "track_group", option: "track_group", scalar: str() },
  { name: "onlink", option: "onlink", flag: true },
  { name: "inet6", option: "inet6", flag: true },
  { name: "no_track", option: "no_track", flag: true },
];
export const routeLines = () => lines(routeFields, "[TYPE] PREFIX [via GW] [dev IF] [src A] [table T] [metric N] ...");

const prefixOrAll = pattern(/^(all|[0-9a-fA-F:.]+(\/\d+)?)$/, "a prefix ADDR/LEN or 'all'");

/** The `ip rule` grammar keepalived accepts (common selectors and actions). */
export const ruleFields: FieldSpec[] = [
  { name: "action", scalar: oneOf(["blackhole", "unreachable", "prohibit", "nop"]), optional: true },
  { name: "from", option: "from", scalar: prefixOrAll },
  { name: "to", option: "to", scalar: prefixOrAll },
  { name: "table", option: ["table", "lookup"], scalar: str() },
  { name: "iif", option: ["iif", "dev"], scalar: ifname() },
  { name: "oif", option: "oif", scalar: ifname() },
  { name: "tos", option: ["tos", "dsfield"], scalar: str() },
  { name: "fwmark", option: "fwmark", scalar: pattern(/^(0x[0-9a-fA-F]+|\d+)(\/(0x[0-9a-fA-F]+|\d+))?$/, "MARK[/MASK]") },
  { name: "priority", option: ["priority", "preference", "pref", "order"], scalar: int(0, 4294967295) },
  { name: "realms", option: "realms", scalar: str() },
  { name: "goto", option: "goto", scalar: int(0, 4294967295) },
  { name: "uidrange", option: "uidrange", scalar: pattern(/^\d+-\d+$/, "UID-UID") },
  { name: "protocol", option: "protocol", scalar: str() },
  { name: "ip_proto", option: ["ip_proto", "ipproto"], scalar: str() },
  { name: "sport", option: "sport", scalar: pattern(/^\d+(-\d+)?$/, "PORT[-PORT]") },
  { name: "dport", option: "dport", scalar: pattern(/^\d+(-\d+)?$/, "PORT[-PORT]") },
  { name: "suppress_prefixlength", option: ["suppress_prefixlength", "suppress_prefixlen", "sup_pl"], scalar: int(0, 128) },
  { name: "suppress_ifgroup", option: ["suppress_ifgroup", "sup_group"], scalar: str() },
  { name: "tunnel_id", option: "tunnel_id", scalar: int(0, 4294967295) },
  { name: "track_group", option: "track_group", scalar: str() },
  { name: "l3mdev", option: "l3mdev", flag: true },
  { name: "not", option: "not", flag: true },
  { name: "inet6", option: "inet6", flag: true },
  { name: "no_track", option: "no_track", flag: true },
];
export const ruleLines = () => lines(ruleFields, "[from P] [to P] [table T] [fwmark M] [priority N] ...");

/** `NAME [weight W] [reverse|noreverse]` lines of track_* blocks. */
export function trackLines(range: number) {
  return lines(
    [
      { name: "name", scalar: str(), doc: "the tracked object" },
      { name: "weight", option: "weight", scalar: int(-range, range) },
      { name: "reverse", option: "reverse", flag: true },
      { name: "noreverse", option: "noreverse", flag: true },
    ],
    `NAME [weight -${range}..${range}] [reverse|noreverse]`,
  );
}

/** `WEIGHT [reverse]`, the default weight of a tracked object. */
export function weightWithReverse(range: number) {
  return record(
    [
      { name: "weight", scalar: int(-range, range) },
      { name: "reverse", option: "reverse", flag: true },
    ],
    { syntax: `-${range}..${range} [reverse]` },
  );
}

/** `USER [GROUP]` */
export const userGroup = () =>
  record([{ name: "user", scalar: str() }, { name: "group", scalar: str(), optional: true }], { syntax: "USER [GROUP]" });

/** `CMD [USER [GROUP]]` */
export const scriptKw = (doc: string, opts: Omit<KwSpec, "kind" | "doc"> = {}) => kw(script(), doc, opts);

/** `FIFO [USER [GROUP]]` */
export const fifoKw = (doc: string) =>
  kw(
    record(
      [
        { name: "path", scalar: str() },
        { name: "user", scalar: str(), optional: true },
        { name: "group", scalar: str(), optional: true },
      ],
      { syntax: "PATH [USER [GROUP]]" },
    ),
    doc,
  );

export const seconds = (min: number, max: number) => one(num(min, max));
export const integer = (min: number, max: number) => one(int(min, max));
export { bool, host, ifname, int, ip, num, oneOf, str };
