/**
 * Where VRRP state changes go, in keepalived's order: the notify scripts, then the FIFO line,
 * then the alert email. Also the lower-priority and priority-change events (issue 4 item 6).
 */
import type { Model, VrrpInstanceModel } from "../config/model.ts";
import type { ScriptRef } from "../config/schema/kinds.ts";
import { alertGlobalsFromDoc, VrrpAlerts, vrrpAlertEnabled } from "./alerts.ts";
import { fifoSpecsFromGlobal, NotifyFifos } from "./fifo.ts";
import type { Logger } from "./logger.ts";
import { createNotifier, type VrrpNotifier } from "./notify.ts";
import { defaultScriptIdentity, lookupIdentity, prepareScript, ScriptRunner } from "./scripts.ts";
import { type Email, SmtpQueue, smtpSettingsFromGlobal } from "./smtp.ts";

export type InstanceState = "MASTER" | "BACKUP" | "FAULT" | "STOP" | "DELETED";

export class VrrpEvents {
  #notify: VrrpNotifier;
  #fifos: NotifyFifos;
  #alerts: VrrpAlerts;
  #alertGlobals: ReturnType<typeof alertGlobalsFromDoc>;
  #smtp: SmtpQueue | undefined;
  #runner = new ScriptRunner();
  /** Last state (and priority) written for each instance and group: fifo_write_vrrp_states_on_reload replays them. */
  #instanceStates = new Map<string, { state: InstanceState; priority: number }>();
  #groupStates = new Map<string, "MASTER" | "BACKUP" | "FAULT" | "STOP">();

  constructor(private model: Model, private readonly log: Logger) {
    this.#notify = createNotifier(model, log);
    const ident = defaultScriptIdentity(model.global);
    const { config, errors } = fifoSpecsFromGlobal(model.global.doc, ident && !("error" in ident) ? ident : undefined, (u, g) => lookupIdentity(u, g));
    for (const e of errors) log.error(e);
    this.#fifos = NotifyFifos.open(config, log);
    this.#alertGlobals = alertGlobalsFromDoc(model.global.router_id, model.global.doc);
    this.#alerts = new VrrpAlerts(this.#alertGlobals);
    const smtp = smtpSettingsFromGlobal(model.global.doc);
    this.#smtp = smtp ? new SmtpQueue(smtp, log) : undefined;
  }

  /** An instance entered `state` with effective priority `priority`. */
  instance(inst: VrrpInstanceModel, state: InstanceState, priority: number): void {
    this.#instanceStates.set(inst.name, { state, priority });
    this.#notify.instance(inst, state, priority);
    this.#fifos.instance(inst.name, state, priority);
    const own = inst.doc.smtp_alert as boolean | undefined;
    const email = this.#alerts.onState("instance", inst.name, state, vrrpAlertEnabled(own, this.#alertGlobals));
    if (email) this.#smtp?.enqueue(email);
  }

  /** A MASTER heard a lower-priority advert: FIFO MASTER_RX_LOWER_PRI and notify_master_rx_lower_pri. */
  masterRxLowerPri(inst: VrrpInstanceModel, priority: number): void {
    this.#fifos.instance(inst.name, "MASTER_RX_LOWER_PRI", priority);
    const ref = inst.doc.notify_master_rx_lower_pri as ScriptRef | undefined;
    if (!ref) return;
    const ident = defaultScriptIdentity(this.model.global);
    const p = prepareScript(ref, ident && !("error" in ident) ? ident : undefined);
    if ("error" in p) {
      this.log.error(`(${inst.name}) notify_master_rx_lower_pri: ${p.error}`);
      return;
    }
    this.log.info(`(${inst.name}) Executing notify_master_rx_lower_pri script ${p.argv.join(" ")}`);
    this.#runner.run(undefined, p.argv, p.identity ? { identity: p.identity } : {});
  }

  /** Effective priority changed: FIFO MASTER_PRIORITY / BACKUP_PRIORITY when asked for. */
  priorityChange(inst: VrrpInstanceModel, state: string, priority: number): void {
    const known = this.#instanceStates.get(inst.name);
    if (known) known.priority = priority;
    const wanted = inst.doc.notify_priority_changes ?? this.model.global.doc.vrrp_notify_priority_changes;
    if (wanted !== true) return;
    if (state === "MASTER") this.#fifos.instance(inst.name, "MASTER_PRIORITY", priority);
    else if (state === "BACKUP") this.#fifos.instance(inst.name, "BACKUP_PRIORITY", priority);
  }

  /** Reload: new scripts, groups and alert settings; FIFOs are reopened only if they changed. */
  reconfigure(model: Model): void {
    const old = this.model;
    this.model = model;
    this.#notify.setGroups(model.vrrp_sync_group);
    this.#alertGlobals = alertGlobalsFromDoc(model.global.router_id, model.global.doc);
    this.#alerts.configure(this.#alertGlobals);
    const smtp = smtpSettingsFromGlobal(model.global.doc);
    if (smtp && this.#smtp) this.#smtp.configure(smtp);
    else if (smtp) this.#smtp = new SmtpQueue(smtp, this.log);
    const fifoKeys = (m: Model) => JSON.stringify(["", "vrrp_", "lvs_"].map((p) => [m.global.doc[`${p}notify_fifo`], m.global.doc[`${p}notify_fifo_script`]]));
    if (fifoKeys(old) !== fifoKeys(model)) {
      this.#fifos.close();
      const ident = defaultScriptIdentity(model.global);
      const { config, errors } = fifoSpecsFromGlobal(model.global.doc, ident && !("error" in ident) ? ident : undefined, (u, g) => lookupIdentity(u, g));
      for (const e of errors) this.log.error(e);
      this.#fifos = NotifyFifos.open(config, this.log);
    }
    if (model.global.doc.fifo_write_vrrp_states_on_reload === true) this.#replayStates(model);
  }

  /**
   * fifo_write_vrrp_states_on_reload: after a reload keepalived writes every instance's and
   * group's current state to the FIFOs, for a reader that was restarted or missed events.
   * Reload keeps the state of matched instances, so the last states written are current.
   */
  #replayStates(model: Model): void {
    for (const inst of model.vrrp_instance) {
      const s = this.#instanceStates.get(inst.name);
      if (s && s.state !== "DELETED" && s.state !== "STOP") this.#fifos.instance(inst.name, s.state, s.priority);
    }
    for (const name of Object.keys(model.vrrp_sync_group)) {
      const s = this.#groupStates.get(name);
      if (s && s !== "STOP") this.#fifos.group(name, s);
    }
  }

  /** A sync group entered `state`: group notifies (`GROUP name STATE 0`), FIFO line, email. */
  group(name: string, state: "MASTER" | "BACKUP" | "FAULT" | "STOP"): void {
    this.#groupStates.set(name, state);
    this.#notify.group(name, state);
    this.#fifos.group(name, state);
    const own = this.model.vrrp_sync_group[name]?.smtp_alert as boolean | undefined;
    const email = this.#alerts.onState("group", name, state, vrrpAlertEnabled(own, this.#alertGlobals));
    if (email) this.#smtp?.enqueue(email);
  }

  /** The notify FIFOs (the LVS manager writes its VS/RS lines there too). */
  get fifos(): NotifyFifos {
    return this.#fifos;
  }

  /** Queues an alert email (LVS alerts go through the same queue). */
  mail(email: Email): void {
    this.#smtp?.enqueue(email);
  }

  /** At exit: bounded wait for STOP notifies, mails flushed briefly, FIFOs closed. */
  async close(): Promise<void> {
    await this.#notify.shutdown(1500);
    await this.#smtp?.idle(2000);
    this.#smtp?.close();
    await this.#fifos.drainAndClose(500); // the reader scripts get the STOP lines before they are stopped
    await this.#runner.shutdown(500);
  }
}
