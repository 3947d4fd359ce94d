/** Can we open the raw sockets the config's instances need (IP protocol 112, or 51 for AH)? */
import type { DoctorCheck, Finding } from "./types.ts";

export const rawSocketsCheck: DoctorCheck = ({ model, probe }) => {
  const wanted = new Map<string, { family: "inet" | "inet6"; protocol: number }>();
  for (const m of model?.vrrp_instance ?? []) {
    const protocol = m.auth_type === "AH" ? 51 : 112;
    wanted.set(`${m.family}/${protocol}`, { family: m.family, protocol });
  }
  if (!wanted.size && !model?.virtual_server.length) wanted.set("inet/112", { family: "inet", protocol: 112 });
  const out: Finding[] = [];
  for (const w of wanted.values()) {
    const err = probe.rawSocket(w.family, w.protocol);
    const what = `raw ${w.family === "inet" ? "IPv4" : "IPv6"} socket for IP protocol ${w.protocol}`;
    if (err === undefined) out.push({ check: "raw-sockets", severity: "ok", message: `${what}: opened` });
    else {
      out.push({
        check: "raw-sockets", severity: "error", message: `${what}: ${err}`,
        fix: /EPERM|EACCES|not permitted/i.test(err) ? "grant CAP_NET_RAW (run as root or add it to the unit's AmbientCapabilities)" : w.family === "inet6" ? "enable IPv6 in the kernel (ipv6.disable=0)" : "check the kernel's raw socket support",
      });
    }
  }
  return out;
};
