/**
 * Builds the checkers of one real server from the config model: the checker object, its
 * resolved timing and how the scheduler must run it (FILE_CHECK and BFD_CHECK are not polled).
 */
import type { Identity, ScriptRunner } from "../daemon/scripts.ts";
import { prepareScript } from "../daemon/scripts.ts";
import type { RealServerModel, VirtualServerModel } from "../config/model.ts";
import type { Doc, ScriptRef } from "../config/schema/kinds.ts";
import { bfdCheckState, type BfdCheckSource } from "./bfd.ts";
import { connectTarget, type Checker } from "./checker.ts";
import { DnsChecker } from "./dns.ts";
import type { TlsClientContext } from "./connect.ts";
import { HttpChecker, httpCheckSpec } from "./http.ts";
import { MiscChecker } from "./misc.ts";
import { PingChecker, type PingTransport } from "./ping.ts";
import type { SchedulerMode } from "./scheduler.ts";
import { DEFAULT_HELO, SmtpChecker } from "./smtp.ts";
import { TcpChecker } from "./tcp.ts";
import { resolveTiming, type CheckerTiming } from "./timing.ts";
import { UdpChecker, parseHex, type UdpCheckSpec } from "./udp.ts";

/** What checkers need from the daemon. */
export interface CheckerDeps {
  /** Runs MISC_CHECK scripts (src/daemon/scripts.ts). */
  scripts?: ScriptRunner;
  /** The default script user (global script_user / keepalived_script). */
  scriptIdentity?: Identity;
  /** ICMP echo for PING_CHECK (ffi/ping-socket.ts createPingTransport()). */
  ping?: PingTransport;
  /** The model's track_file blocks, for FILE_CHECK. */
  trackFiles?: Record<string, Doc>;
  /** global_defs checker_log_all_failures. */
  logAllFailures?: boolean;
  /** BFD session states for BFD_CHECK (src/daemon/bfd-runtime.ts, checker side). */
  bfd?: BfdCheckSource;
  /** The global SSL { } block, read (http.ts loadTlsClientContext): SSL_GET's client context, or why it failed. */
  tls?: TlsClientContext | { error: string };
}

/** One built checker of a real server. */
export type BuiltChecker =
  | { kind: "polled"; type: string; checker: Checker; timing: CheckerTiming; mode: SchedulerMode; problems: string[] }
  /** FILE_CHECK: follows a file's value. */
  | { kind: "file"; type: "FILE_CHECK"; name: string; path: string; weight: number; reverse: boolean; problems: string[] }
  /** Not polled: BFD_CHECK (its initial state; events follow), or a checker that cannot run (a config problem). */
  | { kind: "fixed"; type: string; up: boolean; detail: string; problems: string[] };

/** The port checkers aim at by default: the real server's, else the virtual server's. */
export function realServerPort(vs: VirtualServerModel, rs: RealServerModel): number {
  return rs.port ?? vs.port ?? 0;
}

/** Builds checker number `index` of real server `rs`. */
export function buildChecker(vs: VirtualServerModel, rs: RealServerModel, index: number, deps: CheckerDeps = {}, port = realServerPort(vs, rs)): BuiltChecker {
  const { type, doc } = rs.checkers[index]!;
  const problems: string[] = [];
  const timing = resolveTiming(type, doc, rs.doc, vs.doc);
  if (deps.logAllFailures) timing.logAllFailures = true;
  const target = connectTarget(doc, rs.ip, port, timing.connectTimeoutMs);
  if (type === "PING_CHECK" && target.fwmark !== undefined) problems.push("PING_CHECK: fwmark is not applied to ping sockets (keepalived ignores it there too)");
  const polled = (checker: Checker, mode: SchedulerMode = { kind: "generic" }): BuiltChecker => ({ kind: "polled", type, checker, timing, mode, problems });
  switch (type) {
    case "TCP_CHECK":
      return polled(new TcpChecker(target));
    case "HTTP_GET":
    case "SSL_GET": {
      const vhost = typeof rs.doc.virtualhost === "string" ? rs.doc.virtualhost : typeof vs.doc.virtualhost === "string" ? vs.doc.virtualhost : undefined;
      const spec = httpCheckSpec(type, doc, vhost, problems);
      if (type === "SSL_GET" && deps.tls) {
        // keepalived stops its checker process when the SSL context cannot be built; here only SSL_GET fails
        if ("error" in deps.tls) return { kind: "fixed", type, up: false, detail: deps.tls.error, problems };
        spec.tlsContext = deps.tls;
      }
      return polled(new HttpChecker(target, spec), { kind: "http", urls: spec.urls.length, fastRecovery: spec.fastRecovery });
    }
    case "MISC_CHECK": {
      const ref = doc.misc_path as ScriptRef | undefined;
      if (!ref) return { kind: "fixed", type, up: false, detail: "MISC_CHECK has no misc_path", problems };
      if (!deps.scripts) return { kind: "fixed", type, up: false, detail: "MISC_CHECK: no script runner", problems };
      const prepared = prepareScript(ref, deps.scriptIdentity);
      if ("error" in prepared) return { kind: "fixed", type, up: false, detail: prepared.error, problems };
      const timeoutS = typeof doc.misc_timeout === "number" ? doc.misc_timeout : vs.delay_loop;
      const checker = new MiscChecker(prepared, {
        timeoutMs: Math.round(timeoutS * 1000), dynamic: doc.misc_dynamic === true, configuredWeight: rs.weight,
        runner: deps.scripts, key: `misc:${vs.id}:${rs.ip}:${rs.port ?? 0}:${index}`,
      });
      return polled(checker, { kind: "generic", from: "start" });
    }
    case "SMTP_CHECK": {
      const hosts = (doc.host as Doc[] | undefined) ?? [];
      if (hosts.length) problems.push("SMTP_CHECK: legacy host {} sub-blocks are not supported; checking the real server only (use one SMTP_CHECK per host)");
      return polled(new SmtpChecker(target, typeof doc.helo_name === "string" ? doc.helo_name : DEFAULT_HELO));
    }
    case "DNS_CHECK":
      return polled(new DnsChecker(target, typeof doc.name === "string" ? doc.name : ".", typeof doc.type === "string" ? doc.type : "SOA"));
    case "UDP_CHECK": {
      const spec: UdpCheckSpec = {
        requireReply: doc.require_reply !== undefined,
        minReplyLength: typeof doc.min_reply_length === "number" ? doc.min_reply_length : 0,
        maxReplyLength: typeof doc.max_reply_length === "number" ? doc.max_reply_length : 255,
      };
      if (typeof doc.payload === "string") {
        const p = parseHex(doc.payload, false);
        if (p) spec.payload = p.data;
        else problems.push("Invalid hex string for UDP_CHECK payload");
      }
      const rr = doc.require_reply as { pattern?: string } | undefined;
      if (rr?.pattern) {
        const p = parseHex(rr.pattern, true);
        if (p) spec.pattern = p;
        else problems.push("Invalid hex string for UDP_CHECK reply");
      }
      if (spec.minReplyLength > spec.maxReplyLength)
        problems.push(`UDP_CHECK min_reply length ${spec.minReplyLength} > max_reply_length ${spec.maxReplyLength} - will always fail`);
      return polled(new UdpChecker(target, spec));
    }
    case "PING_CHECK":
      return polled(new PingChecker(target, deps.ping));
    case "FILE_CHECK": {
      const name = String(doc.track_file ?? "");
      const tf = deps.trackFiles?.[name];
      if (!tf || typeof tf.file !== "string") return { kind: "fixed", type, up: false, detail: `track_file ${name} not found`, problems };
      const w = (doc.weight as { weight?: number; reverse?: boolean } | undefined) ?? (tf.weight as { weight?: number; reverse?: boolean } | undefined);
      return { kind: "file", type: "FILE_CHECK", name, path: tf.file, weight: w?.weight ?? 1, reverse: w?.reverse === true, problems };
    }
    case "BFD_CHECK": {
      // event-driven, not polled: the initial state here; session events follow (BfdCheckFollower)
      const s = bfdCheckState(String(doc.name ?? ""), deps.bfd);
      return { kind: "fixed", type, up: s.up, detail: s.detail, problems: [...problems, ...s.problems] };
    }
    default:
      return { kind: "fixed", type, up: false, detail: `unknown checker ${type}`, problems };
  }
}
