/** `vipd dump-config -f FILE`: print the resolved model as JSON. */
import { formatDiagnostic } from "../config/diagnostics.ts";
import { loadConfig } from "../config/load.ts";
import { configOptions, configPath, parseCommandArgs } from "./config-args.ts";

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("dump-config", argv, configOptions, "[-f FILE] [--config-id ID]");
  if (typeof args === "number") return args;
  const loaded = loadConfig(configPath(args.values), { configId: args.values["config-id"] as string | undefined });
  for (const d of loaded.diagnostics.items) if (d.severity !== "info") process.stderr.write(`${formatDiagnostic(d)}\n`);
  if (loaded.missing) return 6;
  process.stdout.write(`${JSON.stringify({ path: loaded.path, format: loaded.format, files: loaded.files, ...loaded.model }, null, 2)}\n`);
  const errors = loaded.diagnostics.errors;
  return errors.some((d) => d.fatal) ? 3 : errors.length ? 4 : 0;
}
