/** The top level of a config: every root block and keyword keepalived knows (reference §1.2). */
import { type BlockSpec, block, flag, one, record, registerHomes } from "./kinds.ts";
import { globalDefs } from "./global.ts";
import { integer, kw } from "./common.ts";
import { bfdInstance, checkers, lvsRootKeywords, realServer, virtualServer } from "./lvs.ts";
import { str } from "./scalar.ts";
import { trackFile, vrrpInstance, vrrpRootKeywords, vrrpScript, vrrpSyncGroup, vrrpTrackProcess } from "./vrrp.ts";

const NO_NETNS = "run vipd itself in the namespace (ip netns exec)";

export const rootSpec: BlockSpec = {
  name: "the top level",
  keywords: {
    global_defs: kw(block(globalDefs), "global settings"),
    ...vrrpRootKeywords,
    ...lvsRootKeywords,
    net_namespace: kw(one(str()), "run in this network namespace", { status: "not-implemented", note: NO_NETNS }),
    net_namespace_ipvs: kw(record([{ name: "name", scalar: str(), optional: true }], { syntax: "[NAME]" }), "IPVS in another namespace", { status: "not-implemented", note: NO_NETNS }),
    namespace_with_ipsets: kw(flag(), "ipsets in the namespace", { status: "not-implemented", note: NO_NETNS }),
    use_pid_dir: kw(flag(), "pid files under /run/keepalived", { status: "ignored", note: "vipd takes --pid-file" }),
    instance: kw(one(str()), "instance name for pid files", { status: "ignored", note: "vipd takes --pid-file and --control" }),
    child_wait_time: kw(integer(0, 3600), "seconds to wait for child processes", { status: "ignored", note: "vipd runs as one process" }),
    linkbeat_use_polling: kw(flag(), "poll link state", { status: "deprecated", note: "use linkbeat_interfaces" }),
  },
  aliases: { vrrp_track_file: "track_file" },
};

registerHomes(rootSpec, [globalDefs, vrrpInstance, vrrpSyncGroup, vrrpScript, vrrpTrackProcess, trackFile, virtualServer, realServer, ...Object.values(checkers), bfdInstance]);
