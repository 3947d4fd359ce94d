/** virtual_server needs the kernel's IPVS generic netlink family ("IPVS", module ip_vs). */
import { type DoctorCheck, kernelOption } from "./types.ts";

export const ipvsCheck: DoctorCheck = ({ model, probe }) => {
  const n = model?.virtual_server.length ?? 0;
  if (!n) return [];
  const err = probe.genlFamily("IPVS");
  if (err === undefined) return [{ check: "ipvs", severity: "ok", message: `${n} virtual_server(s): the IPVS netlink family is present` }];
  const loadable = probe.run(["modprobe", "-n", "-q", "ip_vs"])?.code === 0 || kernelOption(probe.kernelConfig(), "CONFIG_IP_VS") === "m";
  if (loadable) {
    return [{ check: "ipvs", severity: "warning", message: `${n} virtual_server(s): IPVS is not loaded (${err}) but the ip_vs module exists`, fix: "load it at boot: echo ip_vs > /etc/modules-load.d/ipvs.conf (or modprobe ip_vs)" }];
  }
  return [{
    check: "ipvs", severity: "error", message: `${n} virtual_server(s): no IPVS in this kernel (${err}); virtual servers will not be programmed`,
    fix: "use a kernel with CONFIG_IP_VS (install the ip_vs module, kmod-ipvs on OpenWrt) or remove the virtual_server blocks",
  }];
};
