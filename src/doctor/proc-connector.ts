/** vrrp_track_process works best with the proc connector (NETLINK_CONNECTOR); without it vipd polls /proc. */
import { type DoctorCheck, kernelOption } from "./types.ts";

export const procConnectorCheck: DoctorCheck = ({ model, probe }) => {
  const n = Object.keys(model?.vrrp_track_process ?? {}).length;
  if (!n) return [];
  const events = kernelOption(probe.kernelConfig(), "CONFIG_PROC_EVENTS");
  const err = probe.netlinkConnector() ?? (probe.kernelConfig() !== undefined && events !== "y" ? "CONFIG_PROC_EVENTS is not set" : undefined);
  if (err === undefined) return [{ check: "proc-connector", severity: "ok", message: `${n} vrrp_track_process: the proc connector is available` }];
  return [{
    check: "proc-connector", severity: "warning",
    message: `${n} vrrp_track_process: no proc connector (${err}); vipd falls back to polling /proc, so process changes are seen later`,
    fix: "use a kernel with CONFIG_CONNECTOR and CONFIG_PROC_EVENTS, and give vipd CAP_NET_ADMIN",
  }];
};
