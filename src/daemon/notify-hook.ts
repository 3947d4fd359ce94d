/** Connects the runtime's state changes to notify scripts (see notify.ts). */
import type { Model, VrrpInstanceModel } from "../config/model.ts";
import type { Logger } from "./logger.ts";

export interface Notifier {
  instance(inst: VrrpInstanceModel, state: "MASTER" | "BACKUP" | "FAULT" | "STOP", priority: number): void;
  /** Waits (at most `ms`) for scripts still running, e.g. notify_stop at shutdown. */
  settle(ms: number): Promise<void>;
}

export function notifier(_model: Model, log: Logger): Notifier {
  return {
    instance: (inst, state, prio) => log.debug(`(${inst.name}) notify ${state} ${prio}`),
    settle: async () => {},
  };
}
