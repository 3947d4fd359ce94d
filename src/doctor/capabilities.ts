/** CAP_NET_ADMIN and CAP_NET_RAW in the effective set (/proc/self/status CapEff). */
import type { DoctorCheck } from "./types.ts";

const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

/** The effective capability mask from /proc/self/status text, or undefined. */
export function effectiveCaps(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

export const capabilitiesCheck: DoctorCheck = ({ probe }) => {
  const caps = effectiveCaps(probe.readFile("/proc/self/status") ?? "");
  if (caps === undefined) return [{ check: "capabilities", severity: "warning", message: "cannot read CapEff from /proc/self/status", fix: "run vipd doctor on Linux with /proc mounted" }];
  const missing = [[CAP_NET_ADMIN, "CAP_NET_ADMIN"], [CAP_NET_RAW, "CAP_NET_RAW"]].filter(([bit]) => !(caps & (1n << (bit as bigint)))).map(([, n]) => n as string);
  if (!missing.length) return [{ check: "capabilities", severity: "ok", message: "CAP_NET_ADMIN and CAP_NET_RAW are effective" }];
  return [{
    check: "capabilities", severity: "error",
    message: `missing ${missing.join(" and ")} (CapEff ${caps.toString(16)}): vipd cannot add addresses or open VRRP sockets`,
    fix: "run vipd as root, or grant them: systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, or setcap cap_net_admin,cap_net_raw+ep /usr/sbin/vipd",
  }];
};
