/** `vipd run`'s logging options (keepalived's -l -D -S -G, plus --log-format) and the logger they build. */
import type { ParseArgsConfig } from "node:util";
import { createLogger, parseFacility, type Logger } from "../daemon/logger.ts";

export const logOptions = {
  "log-console": { type: "boolean", short: "l" },
  "log-detail": { type: "boolean", short: "D" },
  "log-facility": { type: "string", short: "S" },
  "log-format": { type: "string" },
  "no-syslog": { type: "boolean", short: "G" },
  /** Where syslog listens (default /dev/log); for tests and chroots. */
  "syslog-socket": { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const LOG_USAGE = "[-l|--log-console] [-D|--log-detail] [-S|--log-facility 0-7|local0-7|user|daemon] [--log-format text|json] [-G|--no-syslog] [--syslog-socket PATH]";

/** The daemon's logger from parsed options, or an error message for a bad value. */
export async function loggerFromOptions(values: Record<string, unknown>): Promise<Logger | string> {
  const facilityText = (values["log-facility"] as string | undefined) ?? "daemon";
  const facility = parseFacility(facilityText);
  if (facility === undefined) return `--log-facility: '${facilityText}' is not 0-7, local0-7, user or daemon`;
  const format = (values["log-format"] as string | undefined) ?? "text";
  if (format !== "text" && format !== "json") return `--log-format: '${format}' is not text or json`;
  const useSyslog = values["no-syslog"] !== true;
  // Loaded only when used, so console-only runs never touch bun:ffi for logging.
  const syslog = useSyslog
    ? new (await import("../../ffi/syslog.ts")).SyslogClient({ facility, path: values["syslog-socket"] as string | undefined })
    : undefined;
  return createLogger({ detail: values["log-detail"] === true, console: values["log-console"] === true, format, syslog });
}
