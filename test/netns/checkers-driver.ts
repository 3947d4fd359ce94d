/**
 * Test driver for test/netns/checkers.test.ts: loads a keepalived.conf, runs every real
 * server's checkers with CheckRunner and prints one JSON line per report (wall-clock `t` in ms,
 * so the test can compare with its own events). Runs inside the checking node's namespace.
 *
 *   bun checkers-driver.ts CONFIG   (stops on SIGTERM or when stdin closes)
 */
import { loadConfig } from "../../src/config/load.ts";
import { CheckRunner } from "../../src/check/runner.ts";
import { ScriptRunner } from "../../src/daemon/scripts.ts";
import { createPingTransport } from "../../ffi/ping-socket.ts";

const path = process.argv[2];
if (!path) throw new Error("usage: checkers-driver.ts CONFIG");
const { model, diagnostics } = loadConfig(path);
const errors = diagnostics.items.filter((d) => d.severity === "error");
if (errors.length) {
  console.log(JSON.stringify({ configErrors: errors.map((d) => d.message) }));
  process.exit(3);
}
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
const scripts = new ScriptRunner();
const ping = createPingTransport();
const runner = new CheckRunner({
  onReport: (r) => out({ t: Date.now(), ...r }),
  onLog: (level, message) => out({ t: Date.now(), log: level, message }),
});
for (const vs of model.virtual_server)
  for (const rs of vs.real_servers) {
    const ref = `${vs.port}`;
    const info = runner.add(ref, vs, rs, { scripts, ping, trackFiles: model.track_file });
    out({ t: Date.now(), added: ref, info });
  }
out({ t: Date.now(), ready: true });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  runner.stop();
  ping.close();
  await scripts.shutdown(200);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.resume();
