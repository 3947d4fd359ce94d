/** Option parsing shared by the commands that read a config (-f, --config-id). */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { defaultConfigPath } from "../config/load.ts";

export const configOptions = {
  "use-file": { type: "string", short: "f" },
  "config-id": { type: "string", short: "i" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** parseArgs that reports bad options as one line and exit code 2 instead of throwing. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig["options"]>>(
  cmd: string,
  argv: string[],
  options: O,
  usage: string,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } | number {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as {
      values: Record<string, string | boolean | string[] | undefined>;
      positionals: string[];
    };
    if (r.values.help) {
      process.stdout.write(`usage: vipd ${cmd} ${usage}\n`);
      return 0;
    }
    return r;
  } catch (e) {
    process.stderr.write(`vipd ${cmd}: ${(e as Error).message.split("\n")[0]}\nusage: vipd ${cmd} ${usage}\n`);
    return 2;
  }
}

/** The config path from -f, else the first default that exists. */
export function configPath(values: Record<string, unknown>): string {
  return (values["use-file"] as string | undefined) ?? defaultConfigPath();
}
