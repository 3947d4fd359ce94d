/**
 * Sysctls that decide whether the config works as meant: ip_nonlocal_bind for services that
 * bind VIPs while BACKUP, arp_ignore/arp_announce on LVS-DR real servers, rp_filter with VMACs.
 */
import type { DoctorCheck, DoctorProbe, Finding } from "./types.ts";

function sysctl(probe: DoctorProbe, key: string): number | undefined {
  const v = probe.readFile(`/proc/sys/${key.replace(/\./g, "/")}`)?.trim();
  return v === undefined || v === "" || Number.isNaN(Number(v)) ? undefined : Number(v);
}

export const sysctlsCheck: DoctorCheck = ({ model, probe }) => {
  if (!model) return [];
  const out: Finding[] = [];
  const vips = model.vrrp_instance.flatMap((m) => [...m.virtual_ipaddress, ...m.virtual_ipaddress_excluded]);
  for (const [family, key] of [["inet", "net.ipv4.ip_nonlocal_bind"], ["inet6", "net.ipv6.ip_nonlocal_bind"]] as const) {
    const n = vips.filter((v) => v.family === family).length;
    if (!n) continue;
    const v = sysctl(probe, key);
    if (v === 0) {
      const vsOnVip = model.virtual_server.some((s) => s.ip !== undefined && vips.some((x) => x.address === s.ip));
      out.push({
        check: "sysctls", severity: vsOnVip ? "warning" : "info",
        message: `${key} = 0: a service that binds a VIP (haproxy, nginx, ...) cannot start while this node is BACKUP`,
        fix: `sysctl -w ${key}=1 and persist it in /etc/sysctl.d/ (not needed for IPVS itself, nor for services bound to 0.0.0.0/::)`,
      });
    } else if (v !== undefined) out.push({ check: "sysctls", severity: "ok", message: `${key} = ${v}` });
  }
  if (model.virtual_server.some((s) => s.lvs_method.toUpperCase() === "DR" || s.real_servers.some((r) => String(r.doc.lvs_method ?? "").toUpperCase() === "DR"))) {
    out.push({
      check: "sysctls", severity: "info",
      message: "LVS-DR: each real server holds the VIP (on lo) and must not answer ARP for it",
      fix: "on every real server: sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 (and the same for lo), VIP on lo as /32",
    });
  }
  const vmacParents = model.vrrp_instance.filter((m) => m.family === "inet" && m.doc.use_vmac !== undefined && m.doc.use_vmac !== false && m.interface).map((m) => m.interface!);
  if (vmacParents.length) {
    const strict = ["all", ...new Set(vmacParents)].filter((i) => sysctl(probe, `net.ipv4.conf.${i}.rp_filter`) === 1);
    if (strict.length) {
      out.push({
        check: "sysctls", severity: "info",
        message: `rp_filter = 1 (strict) on ${strict.join(", ")}: VMAC traffic would be dropped; vipd sets all.rp_filter=0 at start, raising each interface so none loses filtering (as keepalived does), and restores it at stop`,
        fix: "nothing to do unless something resets rp_filter after vipd starts; then use 2 (loose) on the VMAC parents",
      });
    } else out.push({ check: "sysctls", severity: "ok", message: `rp_filter allows VMAC traffic on ${[...new Set(vmacParents)].join(", ")}` });
  }
  return out;
};
