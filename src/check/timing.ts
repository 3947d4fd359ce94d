/**
 * A checker's resolved timing: keepalived's inheritance checker → real_server → virtual_server
 * with the per-type defaults of check_data.c (retry 1, DNS 3, MISC 0; delay_before_retry 1 s,
 * HTTP/SSL 3 s, DNS = delay_loop; warmup = delay_loop; connect_timeout 5 s).
 */
import type { Doc } from "../config/schema/kinds.ts";

/** Milliseconds and counts one checker runs with. */
export interface CheckerTiming {
  delayLoopMs: number;
  retry: number;
  delayBeforeRetryMs: number;
  /** Upper bound of the random first-run delay (0 = none). */
  warmupMs: number;
  connectTimeoutMs: number;
  /** Starts DOWN until its first success. */
  alpha: boolean;
  logAllFailures: boolean;
}

const VS_DELAY_LOOP_S = 60;
const CONNECT_TIMEOUT_S = 5;

/** keepalived's default_retry per checker type. */
export function defaultRetry(type: string): number {
  return type === "DNS_CHECK" ? 3 : type === "MISC_CHECK" ? 0 : 1;
}

/** keepalived's default_delay_before_retry in seconds; undefined = delay_loop (DNS). */
export function defaultDelayBeforeRetry(type: string): number | undefined {
  if (type === "DNS_CHECK") return undefined;
  return type === "HTTP_GET" || type === "SSL_GET" ? 3 : 1;
}

const num = (d: Doc | undefined, k: string): number | undefined => (typeof d?.[k] === "number" ? (d[k] as number) : undefined);
const bool = (d: Doc | undefined, k: string): boolean | undefined => (typeof d?.[k] === "boolean" ? (d[k] as boolean) : undefined);
const ms = (s: number) => Math.round(s * 1000);

/** Resolves one checker's timing from its own, its real server's and its virtual server's documents. */
export function resolveTiming(type: string, checker: Doc, rs: Doc, vs: Doc): CheckerTiming {
  // real_server takes what it lacks from virtual_server (check_data.c, "Take default values from virtual server").
  const pick = (k: string) => num(rs, k) ?? num(vs, k);
  const delayLoop = num(checker, "delay_loop") ?? pick("delay_loop") ?? VS_DELAY_LOOP_S;
  const retry = num(checker, "retry") ?? pick("retry") ?? defaultRetry(type);
  const warmup = num(checker, "warmup") ?? pick("warmup") ?? delayLoop;
  const dbr = num(checker, "delay_before_retry") ?? pick("delay_before_retry") ?? defaultDelayBeforeRetry(type) ?? delayLoop;
  const connectTimeout = num(checker, "connect_timeout") ?? pick("connect_timeout") ?? CONNECT_TIMEOUT_S;
  const alpha = bool(checker, "alpha") ?? bool(rs, "alpha") ?? bool(vs, "alpha") ?? false;
  return {
    delayLoopMs: ms(delayLoop),
    retry,
    delayBeforeRetryMs: ms(dbr),
    warmupMs: ms(warmup),
    connectTimeoutMs: ms(connectTimeout),
    alpha: type === "FILE_CHECK" ? false : alpha,
    logAllFailures: bool(checker, "log_all_failures") ?? false,
  };
}
