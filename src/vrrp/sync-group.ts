/**
 * A `vrrp_sync_group` (reference §1.7), sans I/O: it owns its member VrrpInstances, passes
 * each event to the member it is for, and makes the others follow — any member in FAULT puts
 * every member in FAULT until no member has a fault; a MASTER member stepping down to BACKUP
 * takes the others with it; a member may only become MASTER when every other member wants
 * MASTER too (keepalived: "prefer backup to avoid thrashing"), and then all become MASTER.
 * Results are the members' actions tagged with the member's name, plus group events.
 */
import { PRIO_OWNER } from "./timing.ts";
import type { LogLevel, RxAdvert, TransitionReason, VrrpAction, VrrpInstance } from "./instance.ts";
import { STATE_NAMES, VrrpState } from "./types.ts";

/** One member's action, tagged with the member (instance) name. */
export type MemberAction = VrrpAction & { member: string };

/** Something that happened to the group as a whole. */
export type GroupAction =
  /**
   * The group's state changed, once per transition (group notifies: `GROUP name STATE 0`).
   * `to` INIT means the group was stopped (report STOP). `trigger` names the member whose
   * own transition moved the group (absent for start and stop).
   */
  | { type: "group-state-change"; group: string; from: VrrpState; to: VrrpState; trigger?: string }
  | { type: "group-log"; group: string; level: LogLevel; message: string };

/** What every SyncGroup method returns, in the order things happened. */
export type SyncGroupAction = MemberAction | GroupAction;

/** Plain-data view of a group for status output. */
export interface SyncGroupSnapshot {
  name: string;
  state: string;
  members: string[];
}

/** Tags a standalone instance's actions with its name, so grouped and ungrouped share one path. */
export function tagActions(member: string, acts: readonly VrrpAction[]): MemberAction[] {
  return acts.map((a) => ({ ...a, member }));
}

/** What `createSyncGroups` builds. */
export interface SyncGroupSet {
  groups: SyncGroup[];
  /** Member instance name → its group. */
  byMember: Map<string, SyncGroup>;
  /** keepalived's configuration complaints (the member or group was skipped, or looks wrong). */
  warnings: string[];
}

/**
 * Builds the sync groups of a config (`vrrp_sync_group NAME { group { VI_1 VI_2 } }`, given as
 * name → block with a `group` word list) over already-created instances, the way keepalived's
 * vrrp_sync_set_group does: unknown names and instances already in a group are skipped, a group
 * left empty is dropped, a one-member group is kept with a warning.
 */
export function createSyncGroups(config: Readonly<Record<string, Readonly<Record<string, unknown>>>>, instances: ReadonlyMap<string, VrrpInstance>): SyncGroupSet {
  const set: SyncGroupSet = { groups: [], byMember: new Map(), warnings: [] };
  for (const [gname, block] of Object.entries(config)) {
    const names = Array.isArray(block.group) ? block.group.filter((n): n is string => typeof n === "string") : [];
    const members: VrrpInstance[] = [];
    for (const n of names) {
      const inst = instances.get(n);
      if (!inst) set.warnings.push(`Virtual router ${n} specified in sync group ${gname} doesn't exist - ignoring`);
      else if (set.byMember.has(n) || members.includes(inst)) set.warnings.push(`Virtual router ${n} cannot exist in more than one sync group; ignoring ${gname}`);
      else members.push(inst);
    }
    if (members.length === 0) {
      set.warnings.push(`Sync group ${gname}, no matching virtual router found in group declaration - removing`);
      continue;
    }
    if (members.length === 1) set.warnings.push(`Sync group ${gname} has only 1 virtual router(s) - this probably isn't what you want`);
    const owners = members.filter((m) => m.params.basePriority === PRIO_OWNER && m.params.wantState === "MASTER").length;
    if (owners > 0 && owners < members.length) set.warnings.push(`Sync group ${gname} has some member(s) as address owner and some not as address owner. This won't work.`);
    const g = new SyncGroup(gname, members);
    set.groups.push(g);
    for (const m of members) set.byMember.set(m.params.name, g);
  }
  return set;
}

/** Instances already in a group (keepalived: an instance may be in only one sync group). */
const groupOf = new WeakMap<VrrpInstance, string>();

/** A sync group. Construct with its members, call `start(now)`, then route member events through it. */
export class SyncGroup {
  readonly name: string;
  readonly #members: readonly VrrpInstance[];
  readonly #byName = new Map<string, VrrpInstance>();
  #state: VrrpState = VrrpState.INIT;
  #started = false;

  /**
   * Takes ownership of `members` (their CanGoMaster hook is replaced). Throws on an empty
   * list, a duplicate name, or an instance already in another group.
   */
  constructor(name: string, members: readonly VrrpInstance[]) {
    if (members.length === 0) throw new Error(`sync group ${name}: no members`);
    for (const m of members) {
      const n = m.params.name;
      if (this.#byName.has(n)) throw new Error(`sync group ${name}: ${n} listed twice`);
      const other = groupOf.get(m);
      if (other !== undefined) throw new Error(`sync group ${name}: ${n} is already in sync group ${other}`);
      this.#byName.set(n, m);
    }
    this.name = name;
    this.#members = [...members];
    for (const m of this.#members) {
      groupOf.set(m, name);
      m.setCanGoMaster((inst) => this.#canGoMaster(inst));
    }
  }

  /** The group's state: INIT before start and after stop, else BACKUP, MASTER or FAULT. */
  get state(): VrrpState {
    return this.#state;
  }

  /** The member instances, in configuration order. */
  get members(): readonly VrrpInstance[] {
    return this.#members;
  }

  /** The member called `name`; throws if there is none. */
  member(name: string): VrrpInstance {
    const m = this.#byName.get(name);
    if (!m) throw new Error(`sync group ${this.name} has no member ${name}`);
    return m;
  }

  /** True if `name` is a member. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** The earliest deadline over all members (each member still has its own; see nextDeadline on each). */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (const m of this.#members) {
      const d = m.nextDeadline();
      if (d !== undefined && (min === undefined || d < min)) min = d;
    }
    return min;
  }

  /**
   * Starts every member. A member with a fault (or any member's fault) starts in FAULT, so
   * the group starts in FAULT; otherwise BACKUP. A group of address owners configured MASTER
   * stays INIT until its members go MASTER (about 1 µs later); in a mixed group an owner
   * starts as BACKUP and waits adver_int + minimal skew.
   */
  start(now: number): SyncGroupAction[] {
    const out: SyncGroupAction[] = [];
    if (this.#started) return out;
    this.#started = true;
    this.#syncHolds(now, out);
    const allOwners = this.#members.every((m) => m.params.basePriority === PRIO_OWNER && m.params.wantState === "MASTER");
    for (const m of this.#members) this.#push(out, m, m.start(now, { ownerWaits: !allOwners }));
    if (this.#anyFault()) this.#setState(out, VrrpState.FAULT);
    else if (!allOwners) this.#setState(out, VrrpState.BACKUP);
    return out;
  }

  /** Stops every member (MASTERs resign with priority 0); the group reports INIT (STOP). */
  stop(now: number): SyncGroupAction[] {
    const out: SyncGroupAction[] = [];
    if (!this.#started) return out;
    this.#started = false;
    for (const m of this.#members) this.#push(out, m, m.stop(now));
    this.#setState(out, VrrpState.INIT);
    return out;
  }

  /** A validated advert for member `member` arrived. */
  onAdvert(now: number, member: string, adv: RxAdvert): SyncGroupAction[] {
    const m = this.member(member);
    return this.#follow(now, m, m.onAdvert(now, adv));
  }

  /** Member `member`'s deadline was reached. */
  onTimer(now: number, member: string): SyncGroupAction[] {
    const m = this.member(member);
    return this.#follow(now, m, m.onTimer(now));
  }

  /** Sets member `member`'s tracker total (see VrrpInstance.setTotalPriority). */
  setTotalPriority(now: number, member: string, total: number): SyncGroupAction[] {
    const m = this.member(member);
    return this.#follow(now, m, m.setTotalPriority(now, total));
  }

  /** Member `member`, as MASTER, lost one of its VIPs to someone else: it steps down and the group follows. */
  stepDown(now: number, member: string): SyncGroupAction[] {
    const m = this.member(member);
    return this.#follow(now, m, m.forceBackup(now, "address-removed"));
  }

  /** Raises or clears fault `reason` on member `member`; the whole group follows. */
  setFault(now: number, member: string, reason: string, on: boolean): SyncGroupAction[] {
    const m = this.member(member);
    const out: SyncGroupAction[] = [];
    this.#push(out, m, m.setFault(now, reason, on));
    this.#syncFaults(now, m, out);
    return out;
  }

  /**
   * Raises or clears fault `reason` on every member, one after the other (a tracker configured
   * on the group itself): the first member moves the group, the last one to clear brings it back.
   */
  setFaultAll(now: number, reason: string, on: boolean): SyncGroupAction[] {
    return this.#members.flatMap((m) => this.setFault(now, m.params.name, reason, on));
  }

  /** Plain-data view for status output. */
  snapshot(): SyncGroupSnapshot {
    return { name: this.name, state: STATE_NAMES[this.#state], members: this.#members.map((m) => m.params.name) };
  }

  // ---- internals ------------------------------------------------------------------------

  /** keepalived's vrrp_sync_can_goto_master: only when every other member wants MASTER. */
  #canGoMaster(inst: VrrpInstance): boolean {
    if (this.#state === VrrpState.MASTER) return true;
    return this.#members.every((m) => m === inst || m.state === VrrpState.MASTER || m.wantsMaster);
  }

  #anyFault(): boolean {
    return this.#members.some((m) => m.faults.size > 0);
  }

  /** Tags and appends `acts` of member `m`. */
  #push(out: SyncGroupAction[], m: VrrpInstance, acts: VrrpAction[]): void {
    for (const a of tagActions(m.params.name, acts)) out.push(a);
  }

  #log(out: SyncGroupAction[], message: string): void {
    out.push({ type: "group-log", group: this.name, level: "info", message: `VRRP_Group(${this.name}) ${message}` });
  }

  #setState(out: SyncGroupAction[], to: VrrpState, trigger?: VrrpInstance): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    out.push(trigger === undefined
      ? { type: "group-state-change", group: this.name, from, to }
      : { type: "group-state-change", group: this.name, from, to, trigger: trigger.params.name });
  }

  /** Holds each member in FAULT while any other member has a fault of its own. */
  #syncHolds(now: number, out: SyncGroupAction[]): void {
    for (const m of this.#members) {
      const held = this.#members.some((o) => o !== m && o.faults.size > 0);
      this.#push(out, m, m.setGroupFault(now, held));
    }
  }

  /** After a fault change on `trigger`: the group enters or leaves FAULT as a whole. */
  #syncFaults(now: number, trigger: VrrpInstance | undefined, out: SyncGroupAction[]): void {
    if (!this.#started) {
      this.#syncHolds(now, out); // only recorded until start
      return;
    }
    const fault = this.#anyFault();
    if (fault && this.#state !== VrrpState.FAULT) this.#log(out, "Syncing instances to FAULT state");
    if (!fault && this.#state === VrrpState.FAULT) this.#log(out, "Syncing instances to BACKUP state");
    this.#syncHolds(now, out);
    if (fault) this.#setState(out, VrrpState.FAULT, trigger);
    else if (this.#state === VrrpState.FAULT) this.#setState(out, VrrpState.BACKUP, trigger);
  }

  /** Appends member `m`'s own actions, then makes the others follow its transitions. */
  #follow(now: number, m: VrrpInstance, acts: VrrpAction[]): SyncGroupAction[] {
    const out: SyncGroupAction[] = [];
    this.#push(out, m, acts);
    for (const a of acts) {
      if (a.type === "state-change") {
        if (a.to === VrrpState.MASTER) this.#syncMaster(now, m, a.reason, out);
        else if (a.to === VrrpState.BACKUP && a.from === VrrpState.MASTER) this.#syncBackup(now, m, out);
      } else if (a.type === "master-rx-lower-prio") {
        // keepalived sends the lower-priority GARPs for the other members too (reference §2.6).
        for (const o of this.#members) if (o !== m) this.#push(out, o, o.announceLowerPriority(now));
      }
    }
    return out;
  }

  /** `trigger` went MASTER (all members agreed): the others follow. */
  #syncMaster(now: number, trigger: VrrpInstance, reason: TransitionReason, out: SyncGroupAction[]): void {
    if (this.#state === VrrpState.MASTER) return;
    this.#log(out, "Syncing instances to MASTER state");
    for (const o of this.#members) if (o !== trigger) this.#push(out, o, o.forceMaster(now, reason));
    this.#setState(out, VrrpState.MASTER, trigger);
  }

  /** `trigger` left MASTER for BACKUP: the other MASTERs step down too. */
  #syncBackup(now: number, trigger: VrrpInstance, out: SyncGroupAction[]): void {
    if (this.#state === VrrpState.BACKUP) return;
    this.#log(out, "Syncing instances to BACKUP state");
    for (const o of this.#members) if (o !== trigger) this.#push(out, o, o.forceBackup(now));
    this.#setState(out, VrrpState.BACKUP, trigger);
  }
}
