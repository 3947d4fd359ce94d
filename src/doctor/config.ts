/** Does the config pass `vipd check`? Errors mean vipd will not run it as written. */
import { formatDiagnostic } from "../config/diagnostics.ts";
import { checkHost } from "../config/host-check.ts";
import type { DoctorCheck, Finding } from "./types.ts";

export const configCheck: DoctorCheck = ({ configPath, loaded }) => {
  if (loaded.missing) {
    return [{ check: "config", severity: "error", message: `cannot read ${configPath}`, fix: "create it or pass -f FILE (vipd check -f FILE validates it)" }];
  }
  checkHost(loaded.model, loaded.diagnostics);
  const errors = loaded.diagnostics.errors;
  const warnings = loaded.diagnostics.warnings;
  const out: Finding[] = [];
  for (const d of errors.slice(0, 10)) out.push({ check: "config", severity: "error", message: formatDiagnostic(d), fix: `fix the line; \`vipd check -f ${configPath}\` lists every problem` });
  for (const d of warnings.slice(0, 10)) out.push({ check: "config", severity: "warning", message: formatDiagnostic(d), fix: `see \`vipd check -f ${configPath}\`` });
  if (errors.length > 10 || warnings.length > 10) out.push({ check: "config", severity: "info", message: `${errors.length} error(s), ${warnings.length} warning(s) in all` });
  if (!out.length) out.push({ check: "config", severity: "ok", message: `${configPath} passes vipd check` });
  return out;
};
