/**
 * `vipd doctor`'s vocabulary: a finding (what, how bad, and the fix), the read-only probe the
 * checks look at the host through (real in src/cli/doctor.ts, fake in tests), and what each
 * check is given.
 */
import type { Loaded } from "../config/load.ts";
import type { Model } from "../config/model.ts";

/** ok/info: fine; warning: works, but something is off; error: will not work. */
export type Severity = "ok" | "info" | "warning" | "error";

export interface Finding {
  /** The check's name (file name in src/doctor/). */
  check: string;
  severity: Severity;
  message: string;
  /** What to do about it (every warning and error names one). */
  fix?: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Read-only questions about the host. Nothing here may change the system. */
export interface DoctorProbe {
  readFile(path: string): string | undefined;
  exists(path: string): boolean;
  /** Runs a command (bounded in time); undefined when it is not installed. */
  run(argv: string[]): CommandResult | undefined;
  /** Opens and closes a raw IP socket; undefined when that worked, else why not (errno text). */
  rawSocket(family: "inet" | "inet6", protocol: number): string | undefined;
  /** Resolves a generic netlink family by name; undefined when it exists, else why not. */
  genlFamily(name: string): string | undefined;
  /** Opens and closes a NETLINK_CONNECTOR socket; undefined when that worked. */
  netlinkConnector(): string | undefined;
  /** The kernel's build config (/proc/config.gz or /boot/config-RELEASE), when readable. */
  kernelConfig(): string | undefined;
  /** The build target, e.g. linux-x64-musl. */
  target: string;
}

export interface DoctorInput {
  configPath: string;
  loaded: Loaded;
  /** The model, unless the config file is missing. */
  model: Model | undefined;
  probe: DoctorProbe;
}

/** One check: returns its findings (at least one, "ok" when all is well, or none when it does not apply). */
export type DoctorCheck = (input: DoctorInput) => Finding[];

/** A kernel config option's value ("y", "m") or undefined when unknown or not set. */
export function kernelOption(config: string | undefined, name: string): string | undefined {
  return config ? new RegExp(`^${name}=(\\S+)`, "m").exec(config)?.[1] : undefined;
}

/** Exit codes: 0 all ok, 1 warnings, 2 something will not work. */
export const DOCTOR_EXIT = { OK: 0, WARNINGS: 1, WILL_NOT_WORK: 2 } as const;

/** The exit code for a set of findings. */
export function doctorExitCode(findings: readonly Finding[]): number {
  if (findings.some((f) => f.severity === "error")) return DOCTOR_EXIT.WILL_NOT_WORK;
  if (findings.some((f) => f.severity === "warning")) return DOCTOR_EXIT.WARNINGS;
  return DOCTOR_EXIT.OK;
}
