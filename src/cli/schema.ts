/** `vipd schema`: print the JSON Schema (draft 2020-12) of the YAML config. */
import { jsonSchema } from "../config/emit.ts";

export async function main(argv: string[]): Promise<number> {
  if (argv.length) {
    process.stderr.write(`vipd schema: unexpected argument '${argv[0]}'\n`);
    return 2;
  }
  process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
  return 0;
}
