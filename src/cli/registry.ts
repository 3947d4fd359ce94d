// The table of CLI commands. Each entry loads its module lazily, so `vipd version` does not
// pay for the config parser and `vipd check` does not pay for the daemon.
// Adding a command is one line: name, summary, and `load: () => import("./<name>.ts")`.

/** What every command module exports: run with the arguments after the command name. */
export interface CommandModule {
  main(argv: string[]): Promise<number>;
}

/** One registered command. */
export interface Command {
  summary: string;
  load: () => Promise<CommandModule>;
}

/** Every command, in the order `vipd help` lists them. */
export const commands: Readonly<Record<string, Command>> = {
  version: { summary: "print version, git revision and target", load: () => import("./version.ts") },
  check: { summary: "validate a config like keepalived -t (exit 0/3/4/5/6)", load: () => import("./check.ts") },
  convert: { summary: "print a config as YAML or keepalived.conf", load: () => import("./convert.ts") },
  "dump-config": { summary: "print the resolved config model as JSON", load: () => import("./dump-config.ts") },
  status: { summary: "show a running daemon's VRRP instances (--json, --keepalived-json)", load: () => import("./status.ts") },
  schema: { summary: "print the JSON Schema of the YAML config", load: () => import("./schema.ts") },
  run: { summary: "run the daemon in the foreground", load: () => import("./run.ts") },
  doctor: { summary: "check the host for what the config needs; names each fix (exit 0/1/2, --json)", load: () => import("./doctor.ts") },
  reload: { summary: "make the running daemon reload its configuration", load: () => import("./reload.ts") },
  genhash: { summary: "print the MD5 digest of a url's body for HTTP_GET/SSL_GET (keepalived's genhash)", load: () => import("./genhash.ts") },
  keepalived: { summary: "keepalived's own command line (also through a `keepalived` symlink)", load: () => import("./keepalived-compat.ts") },
  help: { summary: "list commands", load: async () => ({ main: helpMain }) },
};

/** The usage text: one line per command. */
export function usageText(): string {
  const names = Object.keys(commands);
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => `  ${n.padEnd(width)}  ${commands[n]!.summary}`);
  return [
    "usage: vipd <command> [args]",
    "",
    "vipd is a keepalived-compatible VRRP, LVS and health-check daemon.",
    "",
    "commands:",
    ...lines,
    "",
    "Run 'vipd <command> --help' for a command's options.",
    "",
  ].join("\n");
}

async function helpMain(argv: string[]): Promise<number> {
  if (argv.length > 0 && !(argv[0]! in commands)) {
    process.stderr.write(`vipd help: unknown command '${argv[0]}'\n`);
    return 2;
  }
  process.stdout.write(usageText());
  return 0;
}
