/**
 * BFD_CHECK (keepalived check_bfd.c): a real server's checker that follows a bfd_instance's
 * session, with no polling. Its initial state is the session's reported state; every session
 * event then marks the checker up or down at once (keepalived's bfd_check_handle_event).
 */
import type { RealServerModel } from "../config/model.ts";
import type { CheckReport } from "./runner.ts";

/** Where BFD_CHECK reads session state: the BFD runtime's checker side. */
export interface BfdCheckSource {
  /** The session's last reported state (true = Up); undefined when no such session feeds checkers. */
  state(name: string): boolean | undefined;
}

/** The state a BFD_CHECK following bfd_instance `name` starts in, with what to log about it. */
export function bfdCheckState(name: string, source?: BfdCheckSource): { up: boolean; detail: string; problems: string[] } {
  const up = name ? source?.state(name) : undefined;
  if (up === undefined) {
    // keepalived: "BFD_CHECK - BFD NAME not configured" and the checker is skipped (so it is no verdict)
    return { up: true, detail: `BFD_CHECK - BFD ${name || "?"} not configured - skipping checker`, problems: [] };
  }
  return { up, detail: `BFD instance ${name} is ${up ? "Up" : "Down"}`, problems: [] };
}

interface Target {
  rsRef: string;
  index: number;
  label: string;
  up: boolean;
}

/** Turns BFD session events into checker reports for every real server's BFD_CHECK on that session. */
export class BfdCheckFollower {
  #byName = new Map<string, Target[]>();

  constructor(private readonly source: BfdCheckSource, private readonly report: (r: CheckReport) => void, private readonly log?: (msg: string) => void) {}

  /** Registers the BFD_CHECKs of real server `rs` (managed under `rsRef`); replaces earlier ones. */
  add(rsRef: string, rs: RealServerModel, label: string): void {
    this.remove(rsRef);
    rs.checkers.forEach((c, index) => {
      if (c.type !== "BFD_CHECK") return;
      const name = String(c.doc.name ?? "");
      const up = this.source.state(name);
      if (up === undefined) return; // not configured: skipped, as keepalived
      const list = this.#byName.get(name) ?? [];
      list.push({ rsRef, index, label, up });
      this.#byName.set(name, list);
    });
  }

  /** Forgets the BFD_CHECKs of `rsRef`. */
  remove(rsRef: string): void {
    for (const [name, list] of this.#byName) {
      const rest = list.filter((t) => t.rsRef !== rsRef);
      if (rest.length) this.#byName.set(name, rest);
      else this.#byName.delete(name);
    }
  }

  clear(): void {
    this.#byName.clear();
  }

  /** A session event: every BFD_CHECK on `name` whose state differs is reported. */
  event(name: string, up: boolean): void {
    for (const t of this.#byName.get(name) ?? []) {
      if (t.up === up) continue;
      t.up = up;
      this.log?.(`BFD_CHECK ${name}: ${t.label} ${up ? "UP" : "DOWN"}`);
      this.report({
        rsRef: t.rsRef, checkerIndex: t.index, type: "BFD_CHECK", up, ok: up, transition: up ? "up" : "down", first: false,
        detail: `${name}`, latencyMs: 0, retrying: false,
      });
    }
  }

  /** Current state of one registered checker (undefined if not followed). */
  stateOf(rsRef: string, index: number): boolean | undefined {
    for (const list of this.#byName.values()) for (const t of list) if (t.rsRef === rsRef && t.index === index) return t.up;
    return undefined;
  }
}
