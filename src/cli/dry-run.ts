/** `vipd run --dry-run`: what start would change (filled in below). */
import type { Model } from "../config/model.ts";
import type { Logger } from "../daemon/logger.ts";

/** Prints the planned changes; returns the exit code. */
export async function dryRun(_model: Model, _path: string, log: Logger): Promise<number> {
  log.error("--dry-run is not implemented yet");
  return 1;
}
