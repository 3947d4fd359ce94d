/**
 * Test lab: network namespaces joined by a veth pair (two nodes) or a bridge (any number),
 * with documentation addresses. Names are unique per process and per lab; `destroy()`
 * removes everything and a process-exit hook catches labs a failing test forgot.
 *
 *   const lab = createLab({ purpose: "vrrp", nodes: ["a", "b"], v4: "192.0.2.0/24", v6: true });
 *   lab.node("a").ns; lab.node("a").v4; lab.exec("a", ["ip", "addr"]); lab.destroy();
 *
 * Every node sees its link as `ifname` (default "eth0"); DAD is off so IPv6 addresses
 * (link-local included) are usable at once.
 */

export interface LabOptions {
  /** Short tag for names: vipdt-<purpose>-<pid>-<n>-<node>. Default "lab". */
  purpose?: string;
  /** Logical node names; each gets a namespace. */
  nodes: string[];
  /** Join nodes through a bridge in its own namespace (forced when more than 2 nodes). */
  bridge?: boolean;
  /** IPv4 prefix, e.g. "192.0.2.0/24": node i gets host address i+1. */
  v4?: string;
  /** true (2001:db8::/64) or an IPv6 /64 prefix like "2001:db8:1::/64": node i gets ::(i+1). */
  v6?: boolean | string;
  /** Interface name inside each node (default "eth0"). */
  ifname?: string;
}

export interface LabNode {
  /** Logical name from LabOptions.nodes. */
  name: string;
  /** Namespace name, for withNetns / `ip -n`. */
  ns: string;
  ifname: string;
  ifindex: number;
  mac: string;
  /** IPv4 address (no prefix) when v4 was requested. */
  v4?: string;
  v4Prefixlen?: number;
  /** Global IPv6 address (no prefix) when v6 was requested. */
  v6?: string;
  /** The kernel-assigned fe80:: address (always present). */
  linkLocal: string;
}

export interface Lab {
  nodes: LabNode[];
  /** The namespace holding the bridge, if any. */
  bridgeNs?: string;
  /** Looks up a node by logical name (throws if unknown). */
  node(name: string): LabNode;
  /** Runs a command inside a node's namespace; throws on non-zero exit unless `allowFail`. */
  exec(node: string, cmd: string[], allowFail?: boolean): { code: number; stdout: string; stderr: string };
  /** Deletes every namespace of the lab (their interfaces go with them). Idempotent. */
  destroy(): void;
}

let labCounter = 0;
const liveLabs = new Set<Lab>();
let exitHookInstalled = false;

/** Runs a command; throws with its stderr on failure unless allowFail. */
export function run(cmd: string[], allowFail = false): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  const out = { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  if (out.code !== 0 && !allowFail) throw new Error(`${cmd.join(" ")} failed (${out.code}): ${out.stderr.trim()}`);
  return out;
}

function hostAddress(prefix: string, host: number): { addr: string; len: number } {
  const [base, lenText] = prefix.split("/");
  const len = Number(lenText ?? "24");
  const p = base!.split(".").map(Number);
  const value = ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  const a = (value + host) >>> 0;
  return { addr: [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join("."), len };
}

function linkInfo(ns: string, ifname: string): { ifindex: number; mac: string } {
  const j = JSON.parse(run(["ip", "-n", ns, "-j", "link", "show", "dev", ifname]).stdout)[0];
  return { ifindex: j.ifindex, mac: j.address };
}

function waitLinkLocal(ns: string, ifname: string): string {
  const deadline = performance.now() + 3000;
  for (let i = 0; i < 300 && performance.now() < deadline; i++) {
    const j = JSON.parse(run(["ip", "-n", ns, "-j", "-6", "addr", "show", "dev", ifname, "scope", "link"]).stdout);
    const a = j[0]?.addr_info?.find((x: { local?: string; tentative?: boolean }) => x.local?.startsWith("fe80") && !x.tentative);
    if (a) return a.local;
    Bun.sleepSync(10);
  }
  throw new Error(`no usable link-local address on ${ns}/${ifname}`);
}

function addNamespace(ns: string): void {
  run(["ip", "netns", "del", ns], true); // a leftover from a crashed run with the same pid
  run(["ip", "netns", "add", ns]);
  run(["ip", "-n", ns, "link", "set", "lo", "up"]);
  // Before any interface exists, so every new interface inherits "no DAD".
  for (const key of ["net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]) {
    run(["ip", "netns", "exec", ns, "sysctl", "-qw", key]);
  }
}

/** Creates the namespaces, links and addresses; on any failure removes what was created. */
export function createLab(opts: LabOptions): Lab {
  const purpose = opts.purpose ?? "lab";
  const ifname = opts.ifname ?? "eth0";
  const prefix = `vipdt-${purpose}-${process.pid}-${labCounter++}`;
  const created: string[] = [];
  const destroy = () => {
    for (const ns of created.splice(0)) run(["ip", "netns", "del", ns], true);
    liveLabs.delete(lab);
  };
  const nodes: LabNode[] = [];
  const lab: Lab = {
    nodes,
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no lab node ${name}`);
      return n;
    },
    exec(node, cmd, allowFail = false) {
      return run(["ip", "netns", "exec", lab.node(node).ns, ...cmd], allowFail);
    },
    destroy,
  };
  liveLabs.add(lab);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => { for (const l of [...liveLabs]) l.destroy(); });
  }
  try {
    const nsOf = (name: string) => `${prefix}-${name}`;
    for (const name of opts.nodes) {
      addNamespace(nsOf(name));
      created.push(nsOf(name));
    }
    const useBridge = opts.bridge || opts.nodes.length > 2;
    if (useBridge) {
      const br = nsOf("br");
      addNamespace(br);
      created.push(br);
      lab.bridgeNs = br;
      run(["ip", "-n", br, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
      run(["ip", "-n", br, "link", "set", "br0", "up"]);
      opts.nodes.forEach((name, i) => {
        const port = `p${i}`;
        run(["ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", nsOf(name)]);
        run(["ip", "-n", br, "link", "set", port, "master", "br0", "up"]);
      });
    } else {
      if (opts.nodes.length !== 2) throw new Error("a lab without bridge needs exactly 2 nodes");
      const [a, b] = opts.nodes as [string, string];
      run(["ip", "-n", nsOf(a), "link", "add", ifname, "type", "veth", "peer", "name", ifname, "netns", nsOf(b)]);
    }
    const v6Prefix = opts.v6 === true ? "2001:db8::" : typeof opts.v6 === "string" ? opts.v6.split("/")[0]! : null;
    opts.nodes.forEach((name, i) => {
      const ns = nsOf(name);
      const node: Partial<LabNode> = { name, ns, ifname };
      if (opts.v4) {
        const h = hostAddress(opts.v4, i + 1);
        run(["ip", "-n", ns, "addr", "add", `${h.addr}/${h.len}`, "dev", ifname]);
        node.v4 = h.addr;
        node.v4Prefixlen = h.len;
      }
      if (v6Prefix) {
        node.v6 = `${v6Prefix.replace(/::$/, "")}::${(i + 1).toString(16)}`;
        run(["ip", "-n", ns, "addr", "add", `${node.v6}/64`, "dev", ifname, "nodad"]);
      }
      run(["ip", "-n", ns, "link", "set", ifname, "up"]);
      Object.assign(node, linkInfo(ns, ifname));
      nodes.push(node as LabNode);
    });
    for (const n of nodes) n.linkLocal = waitLinkLocal(n.ns, ifname);
    return lab;
  } catch (err) {
    destroy();
    throw err;
  }
}

/** Waits (bounded) until `node` of `lab` listens on every TCP and UDP port given. */
export async function waitListening(lab: Lab, node: string, tcp: number[], udp: number[], ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const t = lab.exec(node, ["ss", "-Hltn"]).stdout + lab.exec(node, ["ss", "-Hlun"]).stdout;
    const missing = [...tcp, ...udp].filter((p) => !new RegExp(`:${p}\\s`).test(t));
    if (missing.length === 0) return;
    if (Date.now() > end) throw new Error(`${node}: not listening on ${missing.join(", ")}`);
    await Bun.sleep(50);
  }
}
