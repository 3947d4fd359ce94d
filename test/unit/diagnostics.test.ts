// The diagnostics list is bounded: garbage input cannot cost unbounded memory or output.
import { expect, test } from "bun:test";
import { Diagnostics, MAX_DIAGNOSTICS } from "../../src/config/diagnostics.ts";

test("diagnostics stop at the cap with one note, keep a fatal error, and cut long messages", () => {
  const d = new Diagnostics();
  const pos = { file: "f", line: 1, col: 1 };
  for (let i = 0; i < MAX_DIAGNOSTICS + 500; i++) d.error(pos, `bad ${"x".repeat(i % 2 ? 1000 : 1)}`);
  d.error(pos, "cannot run", undefined, true);
  expect(d.items.length).toBe(MAX_DIAGNOSTICS + 2);
  expect(d.items.some((x) => x.message.startsWith("too many problems"))).toBe(true);
  expect(d.items.some((x) => x.fatal)).toBe(true);
  expect(Math.max(...d.items.map((x) => x.message.length))).toBeLessThanOrEqual(301);
  expect(d.dropped).toBe(500);
});
