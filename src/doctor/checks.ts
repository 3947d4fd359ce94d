/** Every doctor check in the order it prints, and the runner that collects their findings. */
import { capabilitiesCheck } from "./capabilities.ts";
import { configCheck } from "./config.ts";
import { firewallCheck } from "./firewall.ts";
import { ipvsCheck } from "./ipvs.ts";
import { libstdcxxCheck } from "./libstdcxx.ts";
import { macvlanCheck } from "./macvlan.ts";
import { procConnectorCheck } from "./proc-connector.ts";
import { rawSocketsCheck } from "./raw-sockets.ts";
import { sysctlsCheck } from "./sysctls.ts";
import type { DoctorCheck, DoctorInput, Finding } from "./types.ts";

export const DOCTOR_CHECKS: ReadonlyArray<[string, DoctorCheck]> = [
  ["config", configCheck],
  ["capabilities", capabilitiesCheck],
  ["libstdc++", libstdcxxCheck],
  ["raw-sockets", rawSocketsCheck],
  ["macvlan", macvlanCheck],
  ["ipvs", ipvsCheck],
  ["proc-connector", procConnectorCheck],
  ["firewall", firewallCheck],
  ["sysctls", sysctlsCheck],
];

/** Runs every check; a check that throws becomes a warning naming it. */
export function runDoctor(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const [name, check] of DOCTOR_CHECKS) {
    try {
      out.push(...check(input));
    } catch (e) {
      out.push({ check: name, severity: "warning", message: `check failed: ${(e as Error).message}`, fix: "report this as a vipd bug" });
    }
  }
  return out;
}

const MARK: Record<Finding["severity"], string> = { ok: "ok  ", info: "info", warning: "WARN", error: "FAIL" };

/** Human-readable report: one line per finding, the fix indented under it, then a summary line. */
export function formatFindings(findings: readonly Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    lines.push(`[${MARK[f.severity]}] ${f.check}: ${f.message}`);
    if (f.fix && f.severity !== "ok") lines.push(`       fix: ${f.fix}`);
  }
  const errors = findings.filter((f) => f.severity === "error").length;
  const warnings = findings.filter((f) => f.severity === "warning").length;
  lines.push(errors ? `${errors} problem(s) that will stop vipd from working, ${warnings} warning(s)` : warnings ? `${warnings} warning(s)` : "all checks passed");
  return lines.join("\n") + "\n";
}
