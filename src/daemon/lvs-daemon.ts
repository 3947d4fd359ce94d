/**
 * LVS in the daemon: the IPVS manager plus the health checkers that feed it. Real servers are
 * checked by src/check (one CheckRunner), transitions go to the manager, which programs IPVS.
 */
import type { Model, RealServerModel, VirtualServerModel } from "../config/model.ts";
import type { Doc } from "../config/schema/kinds.ts";
import { loadTlsClientContext } from "../check/http.ts";
import { BfdCheckFollower, type BfdCheckSource } from "../check/bfd.ts";
import { CheckRunner } from "../check/runner.ts";
import type { PingTransport } from "../check/ping.ts";
import { Nft } from "../../ffi/nft.ts";
import { RtNetlink } from "../../ffi/rtnetlink.ts";
import { createLvsManager, type LvsManager, type LvsNft, type LvsStatus } from "../lvs/manager.ts";
import type { IpvsOpen } from "../lvs/manager.ts";
import type { Logger } from "./logger.ts";
import { defaultScriptIdentity, ScriptRunner } from "./scripts.ts";
import type { VrrpEvents } from "./vrrp-events.ts";

export interface LvsDaemonDeps {
  log: Logger;
  events: VrrpEvents;
  openIpvs: () => IpvsOpen;
  ping?: PingTransport;
  /** BFD sessions for BFD_CHECK (checker side of src/daemon/bfd-runtime.ts). */
  bfd?: BfdCheckSource & { onEvent(cb: (name: string, up: boolean) => void): void };
  /** nftables for nftables_ipvs (default: `nft` from PATH, its absence logged by the manager). */
  nft?: LvsNft;
  /** The local addresses for ha_suspend (default: a netlink address dump every second, only when ha_suspend is configured). */
  localAddresses?: LocalAddressSource;
}

/** Where ha_suspend learns which addresses are local (keepalived follows netlink address events). */
export interface LocalAddressSource {
  /** Every address configured locally now. */
  list(): string[];
  /** Calls `onChange` when the addresses may have changed; returns the function that stops watching. */
  watch(onChange: () => void): () => void;
}

/** The default LocalAddressSource: dumps the namespace's addresses every `periodMs` and reports changes. */
export function pollingLocalAddresses(log: Logger, periodMs = 1000): LocalAddressSource {
  let nl: RtNetlink | undefined;
  let failed = false;
  let last: string[] = [];
  const list = (): string[] => {
    try {
      nl ??= new RtNetlink();
      last = nl.dumpAddresses().map((a) => a.address);
      failed = false;
    } catch (e) {
      if (!failed) log.error(`ha_suspend: cannot list the local addresses: ${(e as Error).message}`);
      failed = true;
    }
    return last;
  };
  return {
    list,
    watch(onChange) {
      let seen = [...last].sort().join(" ");
      const timer = setInterval(() => {
        const now = [...list()].sort().join(" ");
        if (now === seen) return;
        seen = now;
        onChange();
      }, periodMs);
      return () => {
        clearInterval(timer);
        nl?.close();
        nl = undefined;
      };
    },
  };
}

export interface LvsDaemon {
  manager: LvsManager;
  vrrpState(instance: string, state: string): void;
  reload(model: Model): void;
  status(): LvsStatus & { checkers: ReturnType<CheckRunner["snapshot"]> };
  stop(): Promise<void>;
}

/** The model's virtual server and real server a manager ref points at. */
function modelsOf(model: Model, vsKey: string, ip: string, port: number): { vs: VirtualServerModel; rs: RealServerModel } | undefined {
  const vs = model.virtual_server.find((v) => vsKey === v.id || vsKey === `${v.id}/${v.protocol}`);
  if (!vs) return undefined;
  const rs = vs.real_servers.find((r) => r.ip === ip && ((r.port ?? 0) === port || vs.port === port || port === 0)) ?? vs.real_servers.find((r) => r.ip === ip);
  return rs ? { vs, rs } : undefined;
}

/** Starts IPVS programming and the checkers; undefined when the config has no virtual_server. */
export function startLvsDaemon(model: Model, deps: LvsDaemonDeps): LvsDaemon | undefined {
  if (!model.virtual_server.length) return undefined;
  const { log } = deps;
  let current = model;
  const scripts = new ScriptRunner();
  const runner = new CheckRunner({
    onReport: (r) => manager.checkerReport(r),
    onLog: (level, msg) => (level === "warn" ? log.warn(msg) : level === "error" ? log.error(msg) : log.info(msg)),
  });
  const manager: LvsManager = createLvsManager(model, {
    log,
    openIpvs: deps.openIpvs,
    // The manager logs nft's absence itself, worded for nftables_ipvs.
    nft: deps.nft ?? new Nft({ warn: () => {} }),
    fifo: deps.events.fifos,
    mail: (e) => deps.events.mail(e),
    onSuspend: (vsKey, suspended) => {
      for (const r of manager.realServers()) if (r.vs.key === vsKey) runner.setSuspended(r.ref, suspended);
    },
  });

  // BFD_CHECK: session events mark checkers up/down at once; deferred one turn so the runner's
  // first (initial-state) report of a just-added checker always comes before
  const bfd = deps.bfd ? new BfdCheckFollower(deps.bfd, (r) => manager.checkerReport(r), (m) => log.info(m)) : undefined;
  deps.bfd?.onEvent((name, up) => void setTimeout(() => bfd?.event(name, up), 0));

  const addCheckers = () => {
    const ident = defaultScriptIdentity(current.global);
    // the root SSL { } block (Model.ssl), read once per (re)load for every SSL_GET
    const tls = loadTlsClientContext(current.ssl);
    if (tls && "error" in tls) log.error(`${tls.error}; SSL_GET checkers stay down`);
    for (const r of manager.realServers()) {
      const m = modelsOf(current, r.vs.key, r.rs.ip, r.rs.port);
      if (!m || !m.rs.checkers.length) continue;
      runner.add(r.ref, m.vs, m.rs, {
        scripts,
        ...(ident && !("error" in ident) ? { scriptIdentity: ident } : {}),
        ...(deps.ping ? { ping: deps.ping } : {}),
        trackFiles: current.track_file,
        logAllFailures: current.global.doc.checker_log_all_failures === true,
        ...(deps.bfd ? { bfd: deps.bfd } : {}),
        ...(tls ? { tls } : {}),
      }, { port: r.rs.port });
      bfd?.add(r.ref, m.rs, `[${r.rs.ip}]:${m.vs.protocol.toLowerCase()}:${r.rs.port}`);
      if (manager.checkersSuspended(r.vs.key)) runner.setSuspended(r.ref, true);
    }
  };

  // ha_suspend: the manager suspends checkers while no service address is local, so it must
  // know the local addresses before start and follow them while running.
  let unwatch: (() => void) | undefined;
  let source = deps.localAddresses;
  const followAddresses = () => {
    if (unwatch || !manager.realServers().some((r) => r.vs.haSuspend)) return;
    source ??= pollingLocalAddresses(log);
    const s = source;
    manager.setLocalAddresses(s.list());
    unwatch = s.watch(() => manager.setLocalAddresses(s.list()));
  };

  followAddresses();
  manager.start();
  addCheckers();
  return {
    manager,
    vrrpState: (instance, state) => manager.vrrpState(instance, state),
    reload(next) {
      current = next;
      // checkers restart with the new configuration; the manager keeps the alive state of
      // unchanged real servers, so IPVS is not touched for them
      for (const s of runner.snapshot()) runner.remove(s.rsRef);
      bfd?.clear();
      manager.reload(next);
      followAddresses();
      addCheckers();
    },
    status: () => ({
      ...manager.status(),
      checkers: runner.snapshot().map((c) => (c.type === "BFD_CHECK" ? { ...c, up: bfd?.stateOf(c.rsRef, c.index) ?? c.up } : c)),
    }),
    async stop() {
      unwatch?.();
      unwatch = undefined;
      runner.stop();
      await manager.stop();
      await scripts.shutdown(500);
    },
  };
}

