/**
 * Mixed vipd/keepalived groups (issue 4 item 9) with configs in the style operators copy from
 * the ArchWiki and field guides, each in both orientations, all labs concurrently:
 * - an nginx HA pair: real nginx in each namespace and `vrrp_script chk_nginx { script "pgrep
 *   ..." interval 1 weight -50 fall 2 rise 2 }`; killing nginx on the master moves the VIP to
 *   the other implementation (a client fetches the page through the VIP) and back;
 * - track_interface with a weight: the master's tracked uplink going down hands the VIP over;
 * - nopreempt + track_process + AH (VRRPv2): the process dying on the vipd master hands over
 *   to keepalived, and vipd stays BACKUP when it comes back; a returning higher-priority
 *   keepalived stays BACKUP behind vipd.
 *
 * Two adaptations to a shared-PID lab: all namespaces see all processes, so the check is
 * `pgrep -F <this node's pid file> nginx` rather than a bare `pgrep nginx`; and keepalived's
 * track_process cannot work in a network namespace (the proc connector refuses it: "Failed
 * to set/clear process event listen - errno 111", the instance stays FAULT), so only vipd
 * tracks the process (vipd polls /proc there).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hasAddress, instanceView, Keepalived, killAll, Proc, TestEnv, type Vipd, waitFor, wallMs } from "./daemon.ts";
import { addDummy, haveKeepalived, instanceStatus, loggedState, setLink, sleepCopy, startIn, waitLogged } from "./daemon-extra.ts";
import { createLab } from "./lab.ts";

const HAVE_KEEPALIVED = haveKeepalived();
const HAVE_NGINX = HAVE_KEEPALIVED && Bun.spawnSync(["sh", "-c", "command -v nginx && command -v curl"]).exitCode === 0;
const WAIT_MS = 10_000;
const VIP = "192.0.2.100";
const dirs: string[] = [];

afterAll(() => {
  killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temp dir under /run: keepalived (started with its own /tmp bind-mounted) sees it too. */
function dir(tag: string): string {
  const d = mkdtempSync(`/run/vipdt-${tag}-`);
  dirs.push(d);
  return d;
}

type Kind = "vipd" | "keepalived";
type Daemon = Vipd | Keepalived;
const other = (k: Kind): Kind => (k === "vipd" ? "keepalived" : "vipd");

function start(e: TestEnv, kind: Kind, node: string, config: string): Daemon {
  return kind === "vipd" ? e.vipd(node, config) : e.keepalived(node, config);
}

/** The state the daemon reports: vipd status, keepalived's JSON dump (both checked against the log). */
async function reported(d: Daemon): Promise<string | undefined> {
  try {
    if (d instanceof Keepalived) return instanceView(await d.json())?.state;
    return (await instanceStatus(d))?.state;
  } catch {
    return undefined;
  }
}

/** Waits until the log and the daemon's own report agree on `state`. */
async function waitState(d: Daemon, state: string, timeoutMs = WAIT_MS): Promise<void> {
  await waitLogged(d, state, timeoutMs);
  await waitFor(async () => (await reported(d)) === state, 3000, () => `${d.name} to report ${state}`, 50);
}

/** nginx in a namespace: master_process off (one process), a unique pid file, a page naming the node. */
function startNginx(e: TestEnv, node: string, d: string): { proc: Proc; pidFile: string } {
  const base = `${d}/nginx-${node}`;
  mkdirSync(base, { recursive: true });
  const pidFile = `${base}/nginx.pid`;
  rmSync(pidFile, { force: true });
  const conf = `${base}/nginx.conf`;
  writeFileSync(conf, [
    "daemon off;", "master_process off;", `pid ${pidFile};`, `error_log ${base}/error.log;`,
    "events { worker_connections 64; }",
    `http { access_log off; client_body_temp_path ${base}/cb; proxy_temp_path ${base}/px; fastcgi_temp_path ${base}/fc; uwsgi_temp_path ${base}/uw; scgi_temp_path ${base}/sc;`,
    `  server { listen 80; location / { return 200 "${node}\\n"; } } }`,
  ].join("\n"));
  const proc = startIn(e.ns(node), `nginx@${node}`, ["nginx", "-e", `${base}/error.log`, "-p", base, "-c", conf]);
  return { proc, pidFile };
}

/** GET http://VIP/ from the client node: the page names the node serving it (or "" on failure). */
function fetchVip(e: TestEnv): string {
  return e.lab.exec("c", ["curl", "-s", "-m", "1", `http://${VIP}/`], true).stdout.trim();
}

function nginxConf(routerId: string, state: string, priority: number, pidFile: string): string {
  return `global_defs {
    router_id ${routerId}
    script_user root
}

vrrp_script chk_nginx {
    script "/usr/bin/pgrep -F ${pidFile} nginx"
    interval 1
    weight -50
    fall 2
    rise 2
}

vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 51
    priority ${priority}
    advert_int 0.1
    version 3
    virtual_ipaddress {
        ${VIP}/24
    }
    track_script {
        chk_nginx
    }
}
`;
}

function trackIfConf(routerId: string, state: string, priority: number, track: boolean): string {
  return `global_defs {
    router_id ${routerId}
}

vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 52
    priority ${priority}
    advert_int 0.1
    version 3
    virtual_ipaddress {
        ${VIP}/24
    }
${track ? "    track_interface {\n        uplink weight -60\n    }\n" : ""}}
`;
}

function nopreemptConf(routerId: string, priority: number, trackProcess: string | undefined): string {
  return `global_defs {
    router_id ${routerId}
}
${trackProcess ? `
vrrp_track_process chk_app {
    process ${trackProcess}
    weight 0
}
` : ""}
vrrp_instance VI_1 {
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 53
    priority ${priority}
    advert_int 1
    version 2
    authentication {
        auth_type AH
        auth_pass s3cr3t
    }
    virtual_ipaddress {
        ${VIP}/24
    }
${trackProcess ? "    track_process {\n        chk_app\n    }\n" : ""}}
`;
}

/** Only `holder` has the VIP among `nodes`. */
function vipOnlyOn(e: TestEnv, holder: string, nodes = ["m", "b"]): boolean {
  return nodes.every((n) => hasAddress(e.ns(n), VIP) === (n === holder));
}

/** No error-level line in either daemon (keepalived's script-security notice is expected). */
function expectNoErrors(...ds: Daemon[]): void {
  for (const d of ds) {
    const bad = d.lines.map((l) => l.line).filter((l) => /ERROR|error|invalid|mismatch|checksum|authentication/i.test(l) && !/IPSEC-AH : Syncing seq_num/.test(l));
    expect(bad, d.name).toEqual([]);
  }
}

describe.skipIf(!HAVE_KEEPALIVED)("mixed vipd/keepalived groups, field-guide configs (netns)", () => {
  for (const masterKind of ["vipd", "keepalived"] as const) {
    test.concurrent.skipIf(!HAVE_NGINX)(`nginx HA pair (chk_nginx weight -50 fall 2 rise 2): ${masterKind} master — nginx killed → VIP to ${other(masterKind)}, restarted → back`, async () => {
      const e = new TestEnv(createLab({ purpose: `mxng${masterKind[0]}`, nodes: ["m", "b", "c"], v4: "192.0.2.0/24" }));
      const d = dir("ngx");
      const nginx: Proc[] = [];
      try {
        const nm = startNginx(e, "m", d);
        const nb = startNginx(e, "b", d);
        nginx.push(nm.proc, nb.proc);
        await waitFor(() => existsSync(nm.pidFile) && existsSync(nb.pidFile), 5000, "nginx pid files");
        const M = start(e, masterKind, "m", nginxConf("lb1", "MASTER", 150, nm.pidFile));
        await waitState(M, "MASTER");
        const B = start(e, other(masterKind), "b", nginxConf("lb2", "BACKUP", 120, nb.pidFile));
        await waitState(B, "BACKUP");
        await waitFor(() => fetchVip(e) === "m", 3000, "the page through the VIP from m");

        // nginx dies on the master: after 2 failed checks (≤ ~3 s) 150-50 = 100 < 120 — b takes over
        const t0 = wallMs();
        nm.proc.kill("SIGKILL");
        await nm.proc.exited;
        await waitState(B, "MASTER");
        const moved = wallMs() - t0;
        await waitState(M, "BACKUP");
        await waitFor(() => vipOnlyOn(e, "b"), 2000, "VIP on b only");
        await waitFor(() => fetchVip(e) === "b", 3000, "the page through the VIP from b");

        // nginx back: after 2 good checks m is 150 again and preempts
        const t1 = wallMs();
        const nm2 = startNginx(e, "m", d);
        nginx.push(nm2.proc);
        await waitState(M, "MASTER");
        const back = wallMs() - t1;
        await waitState(B, "BACKUP");
        await waitFor(() => vipOnlyOn(e, "m"), 2000, "VIP back on m only");
        await waitFor(() => fetchVip(e) === "m", 3000, "the page through the VIP from m again");
        console.log(`nginx pair, ${masterKind} master: VIP moved ${moved.toFixed(0)} ms after nginx was killed, back ${back.toFixed(0)} ms after it restarted (interval 1 s, fall/rise 2)`);
        expect(moved).toBeGreaterThan(900); // fall 2 at interval 1: not on the first failed check
        expectNoErrors(M, B);
      } finally {
        await Promise.all(nginx.map((p) => p.stop("SIGKILL", 1000)));
        await e.close();
      }
    }, 60_000);

    test.concurrent(`track_interface with weight -60: ${masterKind} master's uplink down → VIP to ${other(masterKind)}, up → back`, async () => {
      const e = new TestEnv(createLab({ purpose: `mxif${masterKind[0]}`, nodes: ["m", "b"], v4: "192.0.2.0/24" }));
      try {
        addDummy(e.ns("m"), "uplink");
        const M = start(e, masterKind, "m", trackIfConf("r1", "MASTER", 150, true));
        await waitState(M, "MASTER");
        const B = start(e, other(masterKind), "b", trackIfConf("r2", "BACKUP", 120, false));
        await waitState(B, "BACKUP");

        const t0 = wallMs();
        setLink(e.ns("m"), "uplink", false); // 150 - 60 = 90 < 120
        await waitState(B, "MASTER");
        const moved = wallMs() - t0;
        await waitState(M, "BACKUP");
        await waitFor(() => vipOnlyOn(e, "b"), 2000, "VIP on b only");
        setLink(e.ns("m"), "uplink", true);
        await waitState(M, "MASTER");
        await waitState(B, "BACKUP");
        await waitFor(() => vipOnlyOn(e, "m"), 2000, "VIP back on m only");
        console.log(`track_interface, ${masterKind} master: VIP moved ${moved.toFixed(0)} ms after the uplink went down`);
        // the weight lowered the priority; it was not a FAULT
        expect(M.lines.some((l) => /\(VI_1\) Entering FAULT STATE|entering FAULT state/.test(l.line))).toBe(false);
        expectNoErrors(M, B);
      } finally {
        await e.close();
      }
    }, 60_000);
  }

  for (const masterKind of ["vipd", "keepalived"] as const) {
    test.concurrent(`unicast across a router (v3, per-peer checksum): ${masterKind} master, ${other(masterKind)} backup — election, crash failover, preemption`, async () => {
      // m — r on 192.0.2.0/24, r — b on 198.51.100.0/24; r forwards (r2's end moves into r).
      const e = new TestEnv(createLab({ purpose: `mxuni${masterKind[0]}`, nodes: ["m", "r"], v4: "192.0.2.0/24" }));
      const e2 = new TestEnv(createLab({ purpose: `mxunj${masterKind[0]}`, nodes: ["b", "r2"], v4: "198.51.100.0/24" }));
      try {
        const rNs = e.ns("r");
        e2.lab.exec("r2", ["ip", "link", "set", "eth0", "netns", rNs, "name", "eth1"]);
        e.lab.exec("r", ["ip", "addr", "add", "198.51.100.2/24", "dev", "eth1"]);
        e.lab.exec("r", ["ip", "link", "set", "eth1", "up"]);
        e.lab.exec("r", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        e.lab.exec("m", ["ip", "route", "add", "default", "via", "192.0.2.2"]);
        e2.lab.exec("b", ["ip", "route", "add", "default", "via", "198.51.100.2"]);
        const UVIP = "203.0.113.10";
        const conf = (rid: string, state: string, prio: number, src: string, peer: string) => `global_defs {
    router_id ${rid}
}

vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 54
    priority ${prio}
    advert_int 0.1
    version 3
    unicast_src_ip ${src}
    unicast_peer {
        ${peer}
    }
    virtual_ipaddress {
        ${UVIP}/32 dev eth0
    }
}
`;
        const mConf = conf("r1", "MASTER", 150, "192.0.2.1", "198.51.100.1");
        const bConf = conf("r2", "BACKUP", 100, "198.51.100.1", "192.0.2.1");
        const M = start(e, masterKind, "m", mConf);
        await waitState(M, "MASTER");
        const B = start(e2, other(masterKind), "b", bConf);
        await waitState(B, "BACKUP");
        await Bun.sleep(500);
        expect(loggedState(M)).toBe("MASTER"); // the backup's adverts (TTL 254 after the router) did not unsettle it
        expect(hasAddress(e.ns("m"), UVIP) && !hasAddress(e2.ns("b"), UVIP)).toBe(true);

        const t0 = wallMs();
        if (M instanceof Keepalived) await M.crash();
        else {
          M.kill("SIGKILL");
          await M.exited;
        }
        await waitState(B, "MASTER");
        const took = wallMs() - t0;
        e.lab.exec("m", ["ip", "addr", "del", `${UVIP}/32`, "dev", "eth0"], true); // the crash's leftover
        const M2 = start(e, masterKind, "m", mConf);
        await waitState(M2, "MASTER");
        await waitState(B, "BACKUP");
        expect(hasAddress(e.ns("m"), UVIP) && !hasAddress(e2.ns("b"), UVIP)).toBe(true);
        console.log(`unicast through a router, ${masterKind} master: ${other(masterKind)} MASTER ${took.toFixed(0)} ms after the crash`);
        expectNoErrors(M2, B);
        for (const d of [M2, B]) {
          const bad = d.lines.map((l) => l.line).filter((l) => /ttl|checksum|bad|drop/i.test(l));
          expect(bad, d.name).toEqual([]);
        }
      } finally {
        await e.close();
        await e2.close();
      }
    }, 60_000);
  }

  test.concurrent("reloads of the vipd master (v2 AH) leave the keepalived backup undisturbed: the AH sequence carries on", async () => {
    const e = new TestEnv(createLab({ purpose: "mxrlah", nodes: ["m", "b"], v4: "192.0.2.0/24" }));
    try {
      const V = e.vipd("m", nopreemptConf("v1", 150, undefined));
      await waitState(V, "MASTER");
      const K = e.keepalived("b", nopreemptConf("k1", 100, undefined));
      await waitState(K, "BACKUP");
      await Bun.sleep(1500);
      const kFrom = K.lines.length;
      const vFrom = V.lines.length;
      for (let i = 0; i < 10; i++) {
        V.kill("SIGHUP");
        await waitFor(() => V.lines.slice(vFrom).filter((l) => /Reloaded/.test(l.line)).length >= i + 1, 3000, `reload ${i + 1}`);
        await Bun.sleep(200);
      }
      await Bun.sleep(4500); // longer than Master_Down_Interval (3.6 s): a backup dropping our adverts would have taken over
      expect(loggedState(K)).toBe("BACKUP");
      expect(K.lines.slice(kFrom).filter((l) => /Entering|IPSEC|sequence|seq/i.test(l.line) && !/Syncing seq_num/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(V.lines.slice(vFrom).filter((l) => /Entering/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(vipOnlyOn(e, "m")).toBe(true);
      expectNoErrors(V, K);
    } finally {
      await e.close();
    }
  }, 60_000);

  test.concurrent("nopreempt + track_process + AH (v2): the process dies on the vipd master → keepalived takes over; vipd returns as BACKUP and stays", async () => {
    const e = new TestEnv(createLab({ purpose: "mxnpv", nodes: ["m", "b"], v4: "192.0.2.0/24" }));
    const d = dir("np");
    const name = `mxap${process.pid}`;
    const app = sleepCopy(d, name);
    let proc: Proc | undefined;
    try {
      proc = startIn(e.ns("m"), name, [app, "1000"]);
      const V = e.vipd("m", nopreemptConf("v1", 150, name));
      await waitState(V, "MASTER");
      const K = e.keepalived("b", nopreemptConf("k1", 100, undefined));
      await waitState(K, "BACKUP");

      const t0 = wallMs();
      proc.kill("SIGKILL");
      await waitState(V, "FAULT");
      await waitState(K, "MASTER");
      const moved = wallMs() - t0;
      await waitFor(() => vipOnlyOn(e, "b"), 2000, "VIP on keepalived's node only");

      proc = startIn(e.ns("m"), name, [app, "1000"]);
      await waitState(V, "BACKUP");
      await Bun.sleep(4000); // > Master_Down_Interval (3.6 s): vipd (150) would have preempted by now
      expect(loggedState(V)).toBe("BACKUP");
      expect(await reported(V)).toBe("BACKUP");
      expect(loggedState(K)).toBe("MASTER");
      expect(vipOnlyOn(e, "b")).toBe(true);
      console.log(`nopreempt/AH/track_process, vipd master: keepalived MASTER ${moved.toFixed(0)} ms after the process was killed; vipd stayed BACKUP on its return`);
      expectNoErrors(V, K);
    } finally {
      await proc?.stop("SIGKILL", 1000);
      await e.close();
    }
  }, 60_000);

  test.concurrent("nopreempt + AH (v2), vipd backup with track_process: keepalived master crashes → vipd takes over; keepalived returns as BACKUP and stays", async () => {
    const e = new TestEnv(createLab({ purpose: "mxnpk", nodes: ["m", "b"], v4: "192.0.2.0/24" }));
    const d = dir("npk");
    const name = `mxbp${process.pid}`;
    const app = sleepCopy(d, name);
    let proc: Proc | undefined;
    try {
      const K = e.keepalived("m", nopreemptConf("k1", 150, undefined));
      await waitState(K, "MASTER");
      // vipd's process is absent: FAULT; it starts: BACKUP behind keepalived
      const V = e.vipd("b", nopreemptConf("v1", 100, name));
      await waitState(V, "FAULT");
      proc = startIn(e.ns("b"), name, [app, "1000"]);
      await waitState(V, "BACKUP");

      const t0 = wallMs();
      await K.crash();
      await waitState(V, "MASTER");
      const took = wallMs() - t0;
      run(e, "m", ["ip", "addr", "del", `${VIP}/24`, "dev", "eth0"]); // the crashed keepalived's leftover

      const K2 = e.keepalived("m", nopreemptConf("k1", 150, undefined));
      await waitState(K2, "BACKUP");
      await Bun.sleep(4000);
      expect(loggedState(K2)).toBe("BACKUP");
      expect(loggedState(V)).toBe("MASTER");
      expect(vipOnlyOn(e, "b")).toBe(true);
      console.log(`nopreempt/AH, keepalived master crashed: vipd MASTER after ${took.toFixed(0)} ms (Master_Down_Interval 3.6 s); keepalived (150) stayed BACKUP on its return`);
      expect(took).toBeGreaterThan(3000);
      expectNoErrors(V, K2);
    } finally {
      await proc?.stop("SIGKILL", 1000);
      await e.close();
    }
  }, 60_000);
});

function run(e: TestEnv, node: string, cmd: string[]): void {
  e.lab.exec(node, cmd, true);
}
