/** `vipd convert -f FILE --to yaml|keepalived`: print the config in the other format. */
import { formatDiagnostic } from "../config/diagnostics.ts";
import { toKeepalived, toYaml } from "../config/emit.ts";
import { loadConfig } from "../config/load.ts";
import { configOptions, configPath, parseCommandArgs } from "./config-args.ts";

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("convert", argv, { ...configOptions, to: { type: "string", short: "t" } }, "-f FILE --to yaml|keepalived [--config-id ID]");
  if (typeof args === "number") return args;
  const to = args.values.to as string | undefined;
  if (to !== "yaml" && to !== "keepalived") {
    process.stderr.write("vipd convert: --to must be 'yaml' or 'keepalived'\n");
    return 2;
  }
  const loaded = loadConfig(configPath(args.values), { configId: args.values["config-id"] as string | undefined });
  const errors = loaded.diagnostics.errors;
  for (const d of loaded.diagnostics.items) if (d.severity !== "info") process.stderr.write(`${formatDiagnostic(d)}\n`);
  if (loaded.missing) return 6;
  if (errors.some((d) => d.fatal)) return 3;
  process.stdout.write(to === "yaml" ? toYaml(loaded.doc) : toKeepalived(loaded.doc));
  return errors.length ? 4 : 0;
}
