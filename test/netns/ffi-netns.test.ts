/** withNetns switches the JS thread's namespace for the duration of a call and always back (root only). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readlinkSync } from "node:fs";
import { createLab, type Lab } from "./lab.ts";
import { withNetns } from "../../ffi/netns.ts";
import { ifNameToIndex, SysError, gettid } from "../../ffi/libc.ts";

/** The network namespace inode of the JS thread (not the process's main-thread view). */
const currentNs = () => readlinkSync(`/proc/self/task/${gettid()}/ns/net`);

describe.skipIf(process.getuid?.() !== 0)("withNetns", () => {
  let lab: Lab;
  beforeAll(() => { lab = createLab({ purpose: "ns", nodes: ["a", "b"], ifname: "vx0" }); });
  afterAll(() => lab?.destroy());

  test("runs inside the namespace and returns to the original one, also after a throw", () => {
    const home = currentNs();
    const inside = withNetns(lab.node("a").ns, () => ({ ns: currentNs(), idx: ifNameToIndex("vx0") }));
    expect(inside.ns).not.toBe(home);
    expect(inside.idx).toBe(lab.node("a").ifindex);
    expect(currentNs()).toBe(home);
    expect(() => ifNameToIndex("vx0")).toThrow(SysError); // the lab's interface is not in our namespace
    expect(() => withNetns(lab.node("b").ns, () => { throw new Error("boom"); })).toThrow("boom");
    expect(currentNs()).toBe(home);
  });

  test("an unknown namespace is a SysError ENOENT and changes nothing", () => {
    const home = currentNs();
    let err: unknown;
    try { withNetns(`vipdt-absent-${process.pid}`, () => 1); } catch (e) { err = e; }
    expect((err as SysError).code).toBe("ENOENT");
    expect(currentNs()).toBe(home);
  });
});
