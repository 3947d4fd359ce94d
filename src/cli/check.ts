/**
 * `vipd check`: validate a config like `keepalived -t`, print a summary and every diagnostic.
 * Exit codes follow keepalived: 0 ok, 3 cannot run, 4 errors but would run,
 * 5 scripts without enable_script_security, 6 no config.
 */
import { formatDiagnostic } from "../config/diagnostics.ts";
import { loadConfig } from "../config/load.ts";
import { checkHost } from "../config/host-check.ts";
import type { Model } from "../config/model.ts";
import { configOptions, configPath, parseCommandArgs } from "./config-args.ts";

export const EXIT = { OK: 0, CANNOT_RUN: 3, ERRORS: 4, SCRIPT_SECURITY: 5, NO_CONFIG: 6 } as const;

/** One line per kind of object the config defines. */
export function summarize(m: Model): string {
  const vips = m.vrrp_instance.reduce((n, i) => n + i.virtual_ipaddress.length + i.virtual_ipaddress_excluded.length, 0);
  const rss = m.virtual_server.reduce((n, v) => n + v.real_servers.length, 0);
  const checks = m.virtual_server.reduce((n, v) => n + v.real_servers.reduce((k, r) => k + r.checkers.length, 0), 0);
  const parts = [
    `${m.vrrp_instance.length} vrrp_instance(s)`,
    `${vips} virtual address(es)`,
    `${Object.keys(m.vrrp_sync_group).length} sync group(s)`,
    `${Object.keys(m.vrrp_script).length} vrrp_script(s)`,
    `${m.virtual_server.length} virtual_server(s)`,
    `${rss} real_server(s)`,
    `${checks} checker(s)`,
  ];
  return parts.join(", ");
}

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("check", argv, { ...configOptions, offline: { type: "boolean" }, quiet: { type: "boolean", short: "q" } }, "[-f FILE] [--config-id ID] [--offline] [-q]");
  if (typeof args === "number") return args;
  const path = configPath(args.values);
  const loaded = loadConfig(path, { configId: args.values["config-id"] as string | undefined });
  if (!args.values.offline && !loaded.missing) checkHost(loaded.model, loaded.diagnostics);
  const m = loaded.model;
  const diags = loaded.diagnostics.items;
  if (!m.global.enable_script_security && m.scripts.length && !loaded.missing)
    loaded.diagnostics.warning(
      m.scripts[0].pos ?? { file: path, line: 1, col: 1 },
      "SECURITY VIOLATION - scripts are being executed but script_security not enabled (add enable_script_security to global_defs and run scripts as a non-root script_user)",
    );
  const quiet = args.values.quiet === true;
  for (const d of diags) if (!quiet || d.severity === "error") process.stderr.write(`${formatDiagnostic(d)}\n`);
  const errors = diags.filter((d) => d.severity === "error");
  const warnings = diags.filter((d) => d.severity === "warning");
  if (!loaded.missing && !quiet) {
    process.stdout.write(`${path} (${loaded.format}${loaded.files.length > 1 ? `, ${loaded.files.length} files` : ""}): ${summarize(m)}\n`);
    process.stdout.write(`${errors.length} error(s), ${warnings.length} warning(s)\n`);
  }
  if (loaded.missing) return EXIT.NO_CONFIG;
  if (errors.some((d) => d.fatal)) return EXIT.CANNOT_RUN;
  if (errors.length) return EXIT.ERRORS;
  if (!m.global.enable_script_security && m.scripts.length) return EXIT.SCRIPT_SECURITY;
  return EXIT.OK;
}
