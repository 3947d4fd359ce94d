// vipd's entry point: `vipd <command> [args]`, dispatched through the command registry.

import { basename } from "node:path";
import { commands, usageText } from "./cli/registry.ts";

/** Runs one command line and returns its exit code; internal errors become exit 1. */
async function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  // A `keepalived` symlink to vipd, or `vipd keepalived ...`: keepalived's command line.
  if (basename(process.argv0) === "keepalived") return await (await import("./cli/keepalived-compat.ts")).main(argv);
  if (first === "keepalived") return await (await import("./cli/keepalived-compat.ts")).main(rest);
  if (first === undefined) {
    process.stderr.write(usageText());
    return 2;
  }
  const name = first === "-h" || first === "--help" ? "help" : first === "--version" || first === "-V" ? "version" : first;
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`vipd: unknown command '${first}'; run 'vipd help' for the list\n`);
    return 2;
  }
  const module = await command.load();
  return await module.main(rest);
}

/** Prints an unexpected error as one line (with the stack only under VIPD_DEBUG=1). */
function reportInternalError(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vipd: internal error: ${message.split("\n")[0]}\n`);
  if (process.env.VIPD_DEBUG === "1" && err instanceof Error && err.stack) {
    process.stderr.write(err.stack + "\n");
  }
}

// Errors escaping a command's own handlers (timers, sockets) end the process the same way.
for (const event of ["uncaughtException", "unhandledRejection"] as const) {
  process.on(event, (err: unknown) => {
    reportInternalError(err);
    process.exit(1);
  });
}

let code: number;
try {
  code = await dispatch(process.argv.slice(2));
} catch (err) {
  reportInternalError(err);
  code = 1;
}
// No process.exit() here: it cuts off stdout still queued for a pipe (measured: 128 KiB of
// 5 MB arrived). Commands must close their timers and sockets before they return.
process.exitCode = code;
