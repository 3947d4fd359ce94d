// `vipd version`: prints version, git revision and target.

import { versionLine } from "../version.ts";

/** Prints `vipd <version> (<rev>) <target>`; takes no arguments. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    process.stderr.write(`vipd version: unexpected argument '${argv[0]}'\n`);
    return 2;
  }
  process.stdout.write(versionLine() + "\n");
  return 0;
}
