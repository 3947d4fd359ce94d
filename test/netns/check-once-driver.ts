/**
 * Test driver for test/netns/checkers-fwmark.test.ts: loads a keepalived.conf, builds every
 * real server's checkers as the daemon does (the model's SSL { } block included) and runs each
 * polled checker once, printing one JSON line per check: { vsPort, type, ok, detail, problems }.
 * Runs inside the checking node's namespace: `bun check-once-driver.ts CONFIG`.
 */
import { loadConfig } from "../../src/config/load.ts";
import { buildChecker } from "../../src/check/factory.ts";
import { loadTlsClientContext } from "../../src/check/http.ts";

const path = process.argv[2];
if (!path) throw new Error("usage: check-once-driver.ts CONFIG");
const { model, diagnostics } = loadConfig(path);
const errors = diagnostics.items.filter((d) => d.severity === "error");
if (errors.length) {
  console.log(JSON.stringify({ configErrors: errors.map((d) => d.message) }));
  process.exit(3);
}
const tls = loadTlsClientContext(model.ssl);
const runs: Promise<void>[] = [];
for (const vs of model.virtual_server)
  for (const rs of vs.real_servers)
    for (let i = 0; i < rs.checkers.length; i++) {
      const b = buildChecker(vs, rs, i, tls ? { tls } : {});
      const line = (o: object): void => void process.stdout.write(JSON.stringify({ vsPort: vs.port, type: b.type, problems: b.problems, ...o }) + "\n");
      if (b.kind !== "polled") {
        line({ ok: false, detail: b.kind === "fixed" ? b.detail : b.kind });
        continue;
      }
      runs.push(b.checker.run(0).then((r) => void line({ ok: r.ok, detail: r.detail })));
    }
await Promise.all(runs);
process.exit(0);
