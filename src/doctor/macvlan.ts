/** use_vmac needs macvlan: built in, loaded, or loadable (checked without creating a link). */
import { type DoctorCheck, kernelOption } from "./types.ts";

export const macvlanCheck: DoctorCheck = ({ model, probe }) => {
  const users = (model?.vrrp_instance ?? []).filter((m) => m.doc.use_vmac !== undefined && m.doc.use_vmac !== false).map((m) => m.name);
  if (!users.length) return [];
  const who = `use_vmac (${users.join(", ")})`;
  if (probe.exists("/sys/module/macvlan")) return [{ check: "macvlan", severity: "ok", message: `${who}: macvlan is loaded` }];
  const opt = kernelOption(probe.kernelConfig(), "CONFIG_MACVLAN");
  if (opt === "y") return [{ check: "macvlan", severity: "ok", message: `${who}: macvlan is built into the kernel (CONFIG_MACVLAN=y)` }];
  const release = probe.readFile("/proc/sys/kernel/osrelease")?.trim();
  const builtin = release ? probe.readFile(`/lib/modules/${release}/modules.builtin`) : undefined;
  if (builtin && /\/macvlan\.ko\b/.test(builtin)) return [{ check: "macvlan", severity: "ok", message: `${who}: macvlan is built into the kernel` }];
  const dry = probe.run(["modprobe", "-n", "-q", "macvlan"]);
  if (dry?.code === 0) return [{ check: "macvlan", severity: "ok", message: `${who}: macvlan module is available (loaded on first use)` }];
  return [{
    check: "macvlan", severity: "error", message: `${who}: no macvlan support found (not loaded, not built in${dry ? ", modprobe -n fails" : ", no modprobe"})`,
    fix: "install the kernel's macvlan module (e.g. linux-modules-extra, kmod-macvlan on OpenWrt) or remove use_vmac",
  }];
};
