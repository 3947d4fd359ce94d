/**
 * BFD_CHECK: vipd has no BFD yet, so this checker always reports "unsupported" and the real
 * server stays as configured otherwise: it is not counted as a failure (keepalived without BFD
 * support rejects the keyword; vipd keeps the rest of the config working and says why).
 */
import type { Checker, CheckOutcome } from "./checker.ts";

/** The message every BFD_CHECK reports. */
export const BFD_UNSUPPORTED = "BFD_CHECK unsupported: BFD is not implemented in vipd; the check is ignored";

/** A placeholder that reports BFD as unsupported and counts as up. */
export class BfdChecker implements Checker {
  readonly type = "BFD_CHECK";
  readonly unsupported = true;

  constructor(readonly instance: string) {}

  async run(): Promise<CheckOutcome> {
    return { ok: true, detail: `${BFD_UNSUPPORTED} (bfd_instance ${this.instance})` };
  }

  close(): void {}
}
