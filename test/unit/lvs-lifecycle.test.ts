// Virtual/real server lifecycle on a fake clock: alive from checkers, alpha, inhibit_on_failure,
// quorum with hysteresis, sorry server, notifies, dynamic weights, omega, ha_suspend, reload.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import { desiredFromModel, type VirtualServerSpec } from "../../src/lvs/desired.ts";
import { type LifecycleAction, LvsLifecycle, haSuspended, miscDynamicDelta, realWeight } from "../../src/lvs/lifecycle.ts";

function specs(body: string, header = "192.0.2.1 80"): VirtualServerSpec[] {
  const l = loadConfigText(`virtual_server ${header} {\nprotocol TCP\n${body}\n}\n`, "/tmp/lc.conf", { hostname: "h", env: {} });
  return desiredFromModel(l.model).virtualServers;
}
const rs = (ip: string, extra = "", checkers = "TCP_CHECK {\n}") => `real_server ${ip} 80 {\n${extra}\n${checkers}\n}`;

/** Compact view of non-log actions. */
const acts = (a: LifecycleAction[]) =>
  a.flatMap((x) => (x.type === "rs" ? [`RS ${x.rs.key} ${x.up ? "UP" : "DOWN"}${x.stopping ? " stop" : ""}`] : x.type === "vs" ? [`VS ${x.up ? "UP" : "DOWN"}${x.init ? " init" : ""}${x.stopping ? " stop" : ""} ${x.weightSum}/${x.threshold}`] : []));
/** The pool as "key=weight" ("S" for the sorry server), ordered by address then port. */
const pool = (lc: LvsLifecycle, vs: VirtualServerSpec) =>
  lc.pool(vs.key).sort((a, b) => a.rs.ip.localeCompare(b.rs.ip, "en", { numeric: true }) || a.rs.port - b.rs.port).map((p) => `${p.rs.key}=${p.weight}${p.sorry ? "S" : ""}`);

describe("real server alive state", () => {
  test("no checker or non-alpha checkers: alive and in the pool at start; quorum up at start with notifies", () => {
    const [vs] = specs(`${rs("198.51.100.1", "weight 3", "")}\n${rs("198.51.100.2")}`);
    const lc = new LvsLifecycle([vs!]);
    expect(acts(lc.start(0))).toEqual(["VS UP init 4/1"]);
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=3", "198.51.100.2:80=1"]);
  });

  test("alive ⇔ all checkers up; one failing checker removes the server, all up brings it back", () => {
    const [vs] = specs(`quorum 1\n${rs("198.51.100.1", "", "TCP_CHECK {\n}\nHTTP_GET {\nurl {\npath /\n}\n}")}\n${rs("198.51.100.2")}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start(0);
    const k = "198.51.100.1:80";
    let r = lc.checkerResult(vs!.key, k, 1, { up: false }, 1000);
    expect(r).toMatchObject({ rsWasAlive: true, rsIsAlive: false, checkerWasUp: true });
    expect(acts(r.actions)).toEqual([`RS ${k} DOWN`]);
    expect(pool(lc, vs!)).toEqual(["198.51.100.2:80=1"]);
    // the other checker failing too changes nothing more
    expect(acts(lc.checkerResult(vs!.key, k, 0, { up: false }, 2000).actions)).toEqual([]);
    // one back: still down (the other is still failing)
    expect(acts(lc.checkerResult(vs!.key, k, 1, { up: true }, 3000).actions)).toEqual([]);
    expect(pool(lc, vs!)).toEqual(["198.51.100.2:80=1"]);
    r = lc.checkerResult(vs!.key, k, 0, { up: true }, 4000);
    expect(acts(r.actions)).toEqual([`RS ${k} UP`]);
    expect(r.rsIsAlive).toBe(true);
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=1", "198.51.100.2:80=1"]);
    expect(lc.state(vs!.key)!.rs.get(k)!.checkers[0]!.since).toBe(4000);
  });

  test("alpha: starts down (not in the pool), first success adds it, first failure still notifies DOWN", () => {
    const [vs] = specs(`alpha\n${rs("198.51.100.1")}\n${rs("198.51.100.2")}`);
    const lc = new LvsLifecycle([vs!]);
    expect(acts(lc.start(0))).toEqual([]); // quorum down, no sorry server: nothing to announce
    expect(pool(lc, vs!)).toEqual([]);
    expect(acts(lc.checkerResult(vs!.key, "198.51.100.2:80", 0, { up: false }).actions)).toEqual(["RS 198.51.100.2:80 DOWN"]);
    // a second confirming failure is silent
    expect(acts(lc.checkerResult(vs!.key, "198.51.100.2:80", 0, { up: false }).actions)).toEqual([]);
    expect(acts(lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: true }).actions)).toEqual(["RS 198.51.100.1:80 UP", "VS UP 1/1"]);
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=1"]);
  });

  test("non-alpha first success is silent (already up)", () => {
    const [vs] = specs(rs("198.51.100.1"));
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: true }).actions).toEqual([]);
  });

  test("rs_init_notifies announces servers that start alive", () => {
    const [vs] = specs(rs("198.51.100.1"));
    const lc = new LvsLifecycle([vs!], { rsInitNotifies: true });
    expect(acts(lc.start())).toEqual(["RS 198.51.100.1:80 UP", "VS UP init 1/1"]);
  });

  test("inhibit_on_failure: a failed server stays at weight 0; alpha+inhibit starts at 0", () => {
    const [vs] = specs(`${rs("198.51.100.1", "weight 5\ninhibit_on_failure")}\n${rs("198.51.100.2", "weight 5\ninhibit_on_failure\nalpha")}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=5", "198.51.100.2:80=0"]);
    lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: false });
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=0", "198.51.100.2:80=0"]);
    lc.checkerResult(vs!.key, "198.51.100.2:80", 0, { up: true });
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=0", "198.51.100.2:80=5"]);
  });
});

describe("quorum and hysteresis", () => {
  // Five servers of weight 1; quorum 3, hysteresis 1: gain at ≥ 4, loss below 2.
  const [vs] = specs(`quorum 3\nhysteresis 1\nquorum_up "/bin/up"\nquorum_down "/bin/down"\n${[1, 2, 3, 4, 5].map((i) => rs(`198.51.100.${i}`)).join("\n")}`);
  const down = (lc: LvsLifecycle, i: number) => acts(lc.checkerResult(vs!.key, `198.51.100.${i}:80`, 0, { up: false }).actions);
  const up = (lc: LvsLifecycle, i: number) => acts(lc.checkerResult(vs!.key, `198.51.100.${i}:80`, 0, { up: true }).actions);

  test("starts up when the weight sum reaches quorum+hysteresis", () => {
    const lc = new LvsLifecycle([vs!]);
    expect(acts(lc.start())).toEqual(["VS UP init 5/4"]);
  });

  test("loses quorum only below quorum−hysteresis, regains only at quorum+hysteresis", () => {
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(down(lc, 1)).toEqual(["RS 198.51.100.1:80 DOWN"]); // 4
    expect(down(lc, 2)).toEqual(["RS 198.51.100.2:80 DOWN"]); // 3
    expect(down(lc, 3)).toEqual(["RS 198.51.100.3:80 DOWN"]); // 2 = q−h: still up
    expect(lc.state(vs!.key)!.quorumUp).toBe(true);
    expect(down(lc, 4)).toEqual(["RS 198.51.100.4:80 DOWN", "VS DOWN 1/2"]); // 1 < 2: lost
    expect(up(lc, 4)).toEqual(["RS 198.51.100.4:80 UP"]); // 2
    expect(up(lc, 3)).toEqual(["RS 198.51.100.3:80 UP"]); // 3: not yet (needs 4)
    expect(lc.state(vs!.key)!.quorumUp).toBe(false);
    expect(up(lc, 2)).toEqual(["RS 198.51.100.2:80 UP", "VS UP 4/4"]);
  });

  test("a zero weight sum always loses quorum", () => {
    const [v] = specs(`quorum 1\n${rs("198.51.100.1")}`);
    const lc = new LvsLifecycle([v!]);
    lc.start();
    expect(acts(lc.checkerResult(v!.key, "198.51.100.1:80", 0, { up: false }).actions)).toEqual(["RS 198.51.100.1:80 DOWN", "VS DOWN 0/1"]);
  });
});

describe("sorry server", () => {
  const body = (extra: string) => `quorum 2\nsorry_server 198.51.100.250 8080\n${extra}\n${rs("198.51.100.1")}\n${rs("198.51.100.2", "inhibit_on_failure")}`;

  test("quorum loss swaps the alive servers for the sorry server; regain swaps back", () => {
    const [vs] = specs(body(""));
    const lc = new LvsLifecycle([vs!]);
    expect(acts(lc.start())).toEqual(["VS UP init 2/2"]);
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=1", "198.51.100.2:80=1"]);
    expect(acts(lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: false }).actions)).toEqual(["RS 198.51.100.1:80 DOWN", "VS DOWN 1/2"]);
    // the alive inhibit server is kept at 0, the sorry server carries the traffic
    expect(pool(lc, vs!)).toEqual(["198.51.100.2:80=0", "198.51.100.250:8080=1S"]);
    expect(lc.state(vs!.key)!.sorryActive).toBe(true);
    lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: true });
    expect(lc.state(vs!.key)!.sorryActive).toBe(false);
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=1", "198.51.100.2:80=1"]);
  });

  test("starting with quorum down brings the sorry server in and announces it", () => {
    const [vs] = specs(body("alpha"));
    const lc = new LvsLifecycle([vs!]);
    expect(acts(lc.start())).toEqual(["VS DOWN init 0/2"]);
    expect(pool(lc, vs!)).toEqual(["198.51.100.2:80=0", "198.51.100.250:8080=1S"]);
  });

  test("sorry_server_inhibit keeps the sorry server at weight 0 while quorum is up", () => {
    const [vs] = specs(body("sorry_server_inhibit"));
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=1", "198.51.100.2:80=1", "198.51.100.250:8080=0S"]);
    lc.checkerResult(vs!.key, "198.51.100.2:80", 0, { up: false });
    expect(pool(lc, vs!)).toEqual(["198.51.100.2:80=0", "198.51.100.250:8080=1S"]);
  });

  test("changes while the sorry server is in are recorded, not pushed", () => {
    const [vs] = specs(`quorum 2\nsorry_server 198.51.100.250 80\n${rs("198.51.100.1")}\n${rs("198.51.100.2")}\n${rs("198.51.100.3", "weight 2")}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    lc.checkerResult(vs!.key, "198.51.100.3:80", 0, { up: false });
    lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: false }); // 1 < 2: sorry in
    expect(pool(lc, vs!)).toEqual(["198.51.100.250:80=1S"]);
    lc.checkerResult(vs!.key, "198.51.100.2:80", 0, { up: false });
    expect(pool(lc, vs!)).toEqual(["198.51.100.250:80=1S"]);
    lc.checkerResult(vs!.key, "198.51.100.3:80", 0, { up: true }); // 2 ≥ 2: back
    expect(pool(lc, vs!)).toEqual(["198.51.100.3:80=2"]);
  });
});

describe("dynamic weights", () => {
  test("misc_dynamic sets the weight to status−2 and can move quorum", () => {
    expect(miscDynamicDelta(12, 50)).toBe(-40);
    expect(miscDynamicDelta(0, 50)).toBe(0);
    expect(realWeight(-5)).toBe(0);
    expect(realWeight(2 ** 40)).toBe(2147483647);
    const [vs] = specs(`quorum 20\n${rs("198.51.100.1", "weight 50", "MISC_CHECK {\nmisc_path /bin/x\nmisc_dynamic\n}")}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=50"]);
    let r = lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: true, weightDelta: miscDynamicDelta(12, 50) });
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=10"]);
    expect(acts(r.actions)).toEqual(["VS DOWN 10/20"]);
    expect(r.actions.some((a) => a.type === "log" && a.message.includes("Changing weight from 50 to 10"))).toBe(true);
    r = lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: true, weightDelta: miscDynamicDelta(40, 50) });
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=38"]);
    expect(acts(r.actions)).toEqual(["VS UP 38/20"]);
    // a failure drops the server and resets its dynamic part
    lc.checkerResult(vs!.key, "198.51.100.1:80", 0, { up: false });
    expect(lc.effectiveWeight(vs!.key, "198.51.100.1:80")).toBe(50);
  });

  test("FILE_CHECK deltas add to other checkers' and the configured weight", () => {
    const l = loadConfigText(`track_file f1 {\nfile /tmp/x\n}\nvirtual_server 192.0.2.1 80 {\nprotocol TCP\nreal_server 198.51.100.1 80 {\nweight 100\nFILE_CHECK {\ntrack_file f1\nweight -10\n}\nMISC_CHECK {\nmisc_path /bin/x\nmisc_dynamic\n}\n}\n}\n`, "/tmp/f.conf", { hostname: "h", env: {} });
    const [vs] = desiredFromModel(l.model).virtualServers;
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    // checkers are indexed in the model's order (RealServerModel.checkers)
    const file = vs!.realServers[0]!.checkers.find((c) => c.type === "FILE_CHECK")!;
    const misc = vs!.realServers[0]!.checkers.find((c) => c.type === "MISC_CHECK")!;
    expect(file.alpha).toBe(false);
    expect(l.model.virtual_server[0]!.real_servers[0]!.checkers[file.index]!.type).toBe("FILE_CHECK");
    lc.weightUpdate(vs!.key, "198.51.100.1:80", file.index, -30);
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=70"]);
    lc.checkerResult(vs!.key, "198.51.100.1:80", misc.index, { up: true, weightDelta: 5 });
    expect(pool(lc, vs!)).toEqual(["198.51.100.1:80=75"]);
    // an unchanged delta is no change
    expect(lc.weightUpdate(vs!.key, "198.51.100.1:80", file.index, -30)).toEqual([]);
  });
});

describe("omega and stop", () => {
  test("without omega, stop says nothing; the pool empties", () => {
    const [vs] = specs(`quorum_down "/bin/d"\n${rs("198.51.100.1", 'notify_down "/bin/n"')}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(acts(lc.stop())).toEqual([]);
    expect(lc.desiredServices()).toEqual([]);
  });

  test("with omega, alive servers notify DOWN and the virtual server quorum_down at stop", () => {
    const [vs] = specs(`omega\n${rs("198.51.100.1")}\n${rs("198.51.100.2")}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    lc.checkerResult(vs!.key, "198.51.100.2:80", 0, { up: false });
    const a = lc.stop();
    expect(acts(a)).toEqual(["RS 198.51.100.1:80 DOWN stop", "VS DOWN stop 0/1"]);
    expect(a.find((x) => x.type === "rs")).toMatchObject({ removed: "stop" });
  });

  test("with a flush on stop only the virtual server notifies", () => {
    const [vs] = specs(`omega\n${rs("198.51.100.1")}`);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(acts(lc.stop("full"))).toEqual(["VS DOWN stop 1/1"]);
  });
});

describe("ha_suspend", () => {
  test("suspended while none of the service addresses is local; fwmark services never", () => {
    const [vs] = specs(`ha_suspend\n${rs("198.51.100.1")}`);
    expect(haSuspended(vs!, new Set())).toBe(true);
    expect(haSuspended(vs!, new Set(["192.0.2.1"]))).toBe(false);
    expect(haSuspended({ haSuspend: true, addresses: [] }, new Set())).toBe(false);
    expect(haSuspended({ haSuspend: false, addresses: ["192.0.2.1"] }, new Set())).toBe(false);
    const lc = new LvsLifecycle([vs!]);
    lc.start();
    expect(lc.setSuspended(vs!.key, true)).toBe(true);
    expect(lc.setSuspended(vs!.key, true)).toBe(false);
    expect(lc.state(vs!.key)!.suspended).toBe(true);
  });
});

describe("reload", () => {
  test("unchanged servers keep their state; new servers start fresh; removed alive servers notify DOWN", () => {
    const [a] = specs(`${rs("198.51.100.1")}\n${rs("198.51.100.2")}`);
    const lc = new LvsLifecycle([a!]);
    lc.start();
    lc.checkerResult(a!.key, "198.51.100.1:80", 0, { up: false });
    const [b] = specs(`${rs("198.51.100.1")}\n${rs("198.51.100.3", "alpha")}`);
    const out = lc.reload([b!]);
    // .2 was the only alive server: its removal also loses quorum (re-evaluated as at start)
    expect(acts(out)).toEqual(["RS 198.51.100.2:80 DOWN", "VS DOWN init 0/1"]);
    expect(out.find((x) => x.type === "rs")).toMatchObject({ removed: "reload" });
    expect(lc.state(b!.key)!.rs.get("198.51.100.1:80")!.alive).toBe(false);
    expect(lc.state(b!.key)!.rs.get("198.51.100.3:80")!.alive).toBe(false);
    expect(lc.state(b!.key)!.quorumUp).toBe(false); // lost: the sum is 0 now
  });
});
