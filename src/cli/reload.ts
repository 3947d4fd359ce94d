/** `vipd reload [--control PATH]`: ask the running daemon to reload its configuration. */
import { parseCommandArgs } from "./config-args.ts";

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("reload", argv, { control: { type: "string" }, help: { type: "boolean", short: "h" } }, "[--control PATH]");
  if (typeof args === "number") return args;
  const { DEFAULT_CONTROL_PATH, request } = await import("../daemon/control-client.ts");
  const path = (args.values.control as string | undefined) ?? DEFAULT_CONTROL_PATH;
  try {
    process.stdout.write(`${String(await request(path, "reload", 10_000))}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`vipd reload: ${(e as Error).message}\n`);
    return 1;
  }
}
