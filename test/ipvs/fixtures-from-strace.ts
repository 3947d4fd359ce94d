/**
 * Turns the strace logs written by capture-fixtures.sh (ipvsadm run under
 * `strace -e write=all -e read=all` inside the ipvs-vm) into test/fixtures/ipvs/<name>.txt:
 * a comment header (command, kernel, ipvsadm version, exit code, output) and one line per
 * netlink datagram, `> hex` sent by ipvsadm or `< hex` received from the kernel.
 * Usage: bun test/ipvs/fixtures-from-strace.ts OUTDIR FIXTUREDIR
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The datagrams of one strace log, in order, with their direction. */
export function datagramsFromStrace(text: string): { dir: ">" | "<"; hex: string }[] {
  const out: { dir: ">" | "<"; hex: string }[] = [];
  let cur: { dir: ">" | "<"; hex: string } | undefined;
  for (const line of text.split("\n")) {
    const call = /^(?:\d+\s+)?(sendmsg|sendto|recvmsg|recvfrom)\(/.exec(line);
    if (call) {
      // libnl peeks at each datagram (MSG_PEEK) before reading it: keep only the real read.
      if (line.includes("MSG_PEEK")) {
        cur = undefined;
        continue;
      }
      cur = { dir: call[1]!.startsWith("send") ? ">" : "<", hex: "" };
      out.push(cur);
      continue;
    }
    // " | 00000  20 00 00 00 10 00 05 00  26 60 02 6b 00 00 00 00   .......&`.k.... |"
    if (cur && line.startsWith(" | ")) {
      for (const m of line.substring(10, 58).matchAll(/[0-9a-f]{2}/g)) cur.hex += m[0];
    }
  }
  return out.filter((d) => d.hex.length > 0); // MSG_PEEK size probes carry no data dump
}

if (import.meta.main) {
  const [outDir, fixtureDir] = process.argv.slice(2);
  if (!outDir || !fixtureDir) throw new Error("usage: fixtures-from-strace.ts OUTDIR FIXTUREDIR");
  const read = (f: string) => (existsSync(join(outDir, f)) ? readFileSync(join(outDir, f), "utf8").trim() : "");
  const kernel = read("kernel.txt");
  const ipvsadm = read("ipvsadm-version.txt");
  let n = 0;
  for (const f of readdirSync(outDir).filter((x) => x.endsWith(".strace")).sort()) {
    const name = f.slice(0, -".strace".length);
    const grams = datagramsFromStrace(read(f));
    const lines = [
      `# command: ${read(`${name}.cmd`)}`,
      `# exit: ${read(`${name}.rc`)}`,
      `# kernel: ${kernel} (Debian, ../shared/tools/ipvs-vm); ${ipvsadm}`,
      "# captured by test/ipvs/capture-fixtures.sh: strace -e write=all -e read=all; '>' sent, '<' received",
      ...read(`${name}.stdout`).split("\n").filter((l) => l !== "").map((l) => `# | ${l}`),
      ...grams.map((g) => `${g.dir} ${g.hex}`),
    ];
    writeFileSync(join(fixtureDir, `${name}.txt`), lines.join("\n") + "\n");
    n++;
  }
  console.log(`wrote ${n} fixtures to ${fixtureDir}`);
}
