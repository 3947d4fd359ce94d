/**
 * Which state changes become alert emails, and their subjects and bodies, as keepalived's
 * vrrp_notify.c, smtp.c and the checkers write them. Pure: no I/O, no clock; the daemon hands
 * the resulting Email to an SmtpQueue.
 *
 *   [lb1] VRRP Instance VI_1 - Entering MASTER state / => VRRP Instance is now owning VRRP VIPs <=
 *   [lb1] VRRP Group G - Entering BACKUP state
 *   [lb1] Realserver [192.0.2.2]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN
 *   [lb1] Virtualserver [192.0.2.1]:tcp:80 - UP
 *
 * Defaults (keepalived's, kept for compatibility): VRRP instances, sync groups and virtual
 * servers send mail only when smtp_alert is set on them or globally (smtp_alert_vrrp /
 * smtp_alert_checker, then smtp_alert); real servers send mail unless turned off, there or
 * globally.
 */
import type { Email } from "./smtp.ts";
import { formatRealServer, formatVirtualServer, type VirtualServerId } from "./fifo.ts";

/** The global_defs keywords that steer alerts; `undefined` means "not set". */
export interface AlertGlobals {
  router_id: string;
  smtp_alert?: boolean;
  smtp_alert_vrrp?: boolean;
  smtp_alert_checker?: boolean;
  no_email_faults?: boolean;
  no_checker_emails?: boolean;
}

/** Reads AlertGlobals from the global_defs document and the resolved router_id. */
export function alertGlobalsFromDoc(routerId: string, doc: Record<string, unknown>): AlertGlobals {
  const flag = (k: string) => (typeof doc[k] === "boolean" ? (doc[k] as boolean) : undefined);
  const g: AlertGlobals = { router_id: routerId };
  for (const k of ["smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "no_email_faults", "no_checker_emails"] as const) {
    const v = flag(k);
    if (v !== undefined) g[k] = v;
  }
  return g;
}

/** Effective smtp_alert of a vrrp_instance or vrrp_sync_group: its own, else smtp_alert_vrrp, else smtp_alert, else off. */
export function vrrpAlertEnabled(own: boolean | undefined, g: AlertGlobals): boolean {
  return own ?? g.smtp_alert_vrrp ?? g.smtp_alert ?? false;
}

/** Effective smtp_alert of a virtual_server: its own, else smtp_alert_checker, else smtp_alert, else off. */
export function virtualServerAlertEnabled(own: boolean | undefined, g: AlertGlobals): boolean {
  return own ?? g.smtp_alert_checker ?? g.smtp_alert ?? false;
}

/** Effective smtp_alert of a real_server: its own, else smtp_alert_checker, else smtp_alert, else ON (keepalived's back-compat default). */
export function realServerAlertEnabled(own: boolean | undefined, g: AlertGlobals): boolean {
  return own ?? g.smtp_alert_checker ?? g.smtp_alert ?? true;
}

// --- VRRP instances and sync groups --------------------------------------------------------------

/** States that can be mailed (the priority-only and rx-lower-prio events never are). */
export type AlertVrrpState = "MASTER" | "BACKUP" | "FAULT" | "STOP" | "DELETED";

const INSTANCE_TEXT: Record<AlertVrrpState, [string, string]> = {
  MASTER: ["Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="],
  BACKUP: ["Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="],
  FAULT: ["Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="],
  STOP: ["Stopping", "=> VRRP Instance stopping <="],
  DELETED: ["Deleted", "=> VRRP Deleted at reload <="],
};

const GROUP_TEXT: Partial<Record<AlertVrrpState, [string, string]>> = {
  MASTER: ["Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="],
  BACKUP: ["Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="],
  FAULT: ["Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="],
  STOP: ["Stopping", "=> All VRRP group instances are now stopping <="],
};

/** `[router_id] VRRP Instance NAME - Entering MASTER state` and its body. */
export function instanceEmail(routerId: string, name: string, state: AlertVrrpState): Email {
  const [what, body] = INSTANCE_TEXT[state];
  return { subject: `[${routerId}] VRRP Instance ${name} - ${what}`, body };
}

/** `[router_id] VRRP Group NAME - Entering MASTER state` and its body; undefined for DELETED (groups have none). */
export function groupEmail(routerId: string, name: string, state: AlertVrrpState): Email | undefined {
  const t = GROUP_TEXT[state];
  return t ? { subject: `[${routerId}] VRRP Group ${name} - ${t[0]}`, body: t[1] } : undefined;
}

/** An instance or group state change to consider mailing. */
export interface VrrpAlertInput {
  kind: "instance" | "group";
  name: string;
  /** The state reported (callers map DELETED to FAULT without notify_deleted, as for the notifies). */
  state: AlertVrrpState;
  /** Effective smtp_alert (vrrpAlertEnabled). */
  enabled: boolean;
  /** The last state an email was sent for (keepalived's last_email_state); undefined = none yet. */
  lastEmailed: AlertVrrpState | undefined;
}

/**
 * keepalived's vrrp_smtp_notifier rule: mail when enabled, the state is not FAULT under
 * no_email_faults, and it differs from the last state mailed. Returns the email (if any) and
 * the new last-emailed state (unchanged when nothing is sent).
 */
export function decideVrrpAlert(i: VrrpAlertInput, g: AlertGlobals): { email?: Email; lastEmailed: AlertVrrpState | undefined } {
  const none = { lastEmailed: i.lastEmailed };
  if (!i.enabled) return none;
  if (g.no_email_faults && i.state === "FAULT") return none;
  if (i.lastEmailed === i.state) return none;
  const email = i.kind === "instance" ? instanceEmail(g.router_id, i.name, i.state) : groupEmail(g.router_id, i.name, i.state);
  return email ? { email, lastEmailed: i.state } : none;
}

/** Remembers last_email_state per instance and per group, around decideVrrpAlert. */
export class VrrpAlerts {
  private readonly last = new Map<string, AlertVrrpState>();

  constructor(private globals: AlertGlobals) {}

  /** New globals after a reload; last-emailed states are kept (instances are matched by name). */
  configure(globals: AlertGlobals): void {
    this.globals = globals;
  }

  /** The email to send for this state change, if any (and records it as sent). */
  onState(kind: "instance" | "group", name: string, state: AlertVrrpState, enabled: boolean): Email | undefined {
    const key = `${kind}\0${name}`;
    const r = decideVrrpAlert({ kind, name, state, enabled, lastEmailed: this.last.get(key) }, this.globals);
    if (r.lastEmailed !== undefined) this.last.set(key, r.lastEmailed);
    return r.email;
  }

  /** Forgets an instance or group removed by a reload. */
  forget(kind: "instance" | "group", name: string): void {
    this.last.delete(`${kind}\0${name}`);
  }
}

// --- LVS: real and virtual servers --------------------------------------------------------------

/** Checker kinds that send alert emails, each with its own wording (FILE_CHECK sends none in keepalived). */
export type CheckerKind = "TCP" | "HTTP" | "SSL" | "SMTP" | "DNS" | "UDP" | "PING" | "MISC" | "BFD";

/**
 * The body keepalived's checkers send (`=> TCP CHECK succeed on service <=`, …). `detail`
 * is the MISC exit wording (keepalived's "succeeded"/"failed"/"timed out"), the BFD instance
 * name, or the SMTP failure reason.
 */
export function checkerMessage(kind: CheckerKind, up: boolean, detail?: string): string {
  switch (kind) {
    case "TCP":
      return up ? "=> TCP CHECK succeed on service <=" : "=> TCP CHECK failed on service <=";
    case "HTTP":
    case "SSL":
      return up ? "=> CHECK succeed on service <=" : "=> CHECK failed on service : HTTP/SSL request failed <=";
    case "SMTP":
      return up ? "=> CHECK succeed on service <=" : detail ? `=> CHECK failed on service : ${detail} <=` : "=> CHECK failed on service <=";
    case "DNS":
      return up ? "=> DNS_CHECK: succeed on service <=" : "=> DNS_CHECK: failed on service <=";
    case "UDP":
      return up ? "=> UDP CHECK succeed on service <=" : "=> UDP CHECK failed on service <=";
    case "PING":
      return up ? "=> ICMP CHECK succeed on service <=" : "=> ICMP CHECK failed on service <=";
    case "MISC":
      return `=> MISC CHECK ${detail ?? (up ? "succeeded" : "failed")} on service <=`;
    case "BFD":
      return `=> BFD CHECK ${detail ?? ""}${detail ? " " : ""}${up ? "succeeded" : "failed"} on service <=`;
  }
}

/** `[router_id] Realserver [rs] of virtual server [vs] - UP|DOWN`, subject state from the real server's alive state. */
export function realServerEmail(routerId: string, rs: { ip: string; port?: number }, vs: VirtualServerId, alive: boolean, body: string): Email {
  return { subject: `[${routerId}] Realserver ${formatRealServer(rs, vs)} of virtual server ${formatVirtualServer(vs)} - ${alive ? "UP" : "DOWN"}`, body };
}

/** A checker result to consider mailing. */
export interface CheckerAlertInput {
  /** Effective smtp_alert of the real server (realServerAlertEnabled). */
  enabled: boolean;
  checkerWasUp: boolean;
  checkerIsUp: boolean;
  rsWasAlive: boolean;
  rsIsAlive: boolean;
}

/**
 * keepalived's checker rule: mail when enabled and this checker changed state, and either the
 * real server's alive state changed or no_checker_emails is off (then every checker change
 * mails, even one that does not move the server).
 */
export function shouldMailChecker(i: CheckerAlertInput, g: AlertGlobals): boolean {
  if (!i.enabled || i.checkerWasUp === i.checkerIsUp) return false;
  return i.rsWasAlive !== i.rsIsAlive || !g.no_checker_emails;
}

/** The email for a checker state change (see shouldMailChecker for when to send it). */
export function checkerEmail(g: AlertGlobals, rs: { ip: string; port?: number }, vs: VirtualServerId, rsIsAlive: boolean, kind: CheckerKind, checkerUp: boolean, detail?: string): Email {
  return realServerEmail(g.router_id, rs, vs, rsIsAlive, checkerMessage(kind, checkerUp, detail));
}

/** A live real server removed by reload (`=> Removing <=`) or shutdown (`=> Shutting down <=`): always DOWN. */
export function realServerRemovedEmail(routerId: string, rs: { ip: string; port?: number }, vs: VirtualServerId, stopping: boolean): Email {
  return realServerEmail(routerId, rs, vs, false, stopping ? "=> Shutting down <=" : "=> Removing <=");
}

/** Quorum figures for a virtual server's email body. */
export interface QuorumInfo {
  up: boolean;
  /** First evaluation at start-up ("Starting with quorum up/down"). */
  init: boolean;
  quorum: number;
  hysteresis: number;
  /** Sum of the live real servers' weights. */
  weightSum: number;
  /**
   * The threshold crossed; default as ipwrapper.c computes it before the state flips:
   * quorum + hysteresis when gaining, quorum − hysteresis when losing.
   */
  threshold?: number;
  stopping?: boolean;
}

/**
 * `[router_id] Virtualserver [vs] - UP|DOWN` with keepalived's body:
 * `=> Gained quorum 1+0=1 <= 2 <=`, `=> Lost quorum …`, `=> Starting with quorum up …`, or
 * `=> Shutting down <=`.
 */
export function virtualServerEmail(routerId: string, vs: VirtualServerId, q: QuorumInfo): Email {
  let body: string;
  if (q.stopping) body = "=> Shutting down <=";
  else {
    const what = q.up ? (q.init ? "Starting with quorum up" : "Gained quorum") : q.init ? "Starting with quorum down" : "Lost quorum";
    const threshold = q.threshold ?? q.quorum + (q.up ? 1 : -1) * q.hysteresis;
    body = `=> ${what} ${q.quorum}+${q.hysteresis}=${threshold} <= ${q.weightSum} <=`;
  }
  return { subject: `[${routerId}] Virtualserver ${formatVirtualServer(vs)} - ${q.up && !q.stopping ? "UP" : "DOWN"}`, body };
}
