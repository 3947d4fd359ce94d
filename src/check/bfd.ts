/**
 * BFD_CHECK: vipd has no BFD yet, so this checker never runs. It reports "unsupported" once and
 * counts as up, so it neither removes the real server nor hides the other checkers' verdicts.
 */

/** The message every BFD_CHECK reports. */
export const BFD_UNSUPPORTED = "BFD_CHECK unsupported: BFD is not implemented in vipd; the check is ignored";

/** The fixed state of a BFD_CHECK following bfd_instance `name`. */
export function bfdCheckState(name: string): { up: true; detail: string } {
  return { up: true, detail: `${BFD_UNSUPPORTED} (bfd_instance ${name || "?"})` };
}
