/** A musl build of vipd (Bun's runtime) needs libstdc++ and libgcc_s on the host. */
import type { DoctorCheck } from "./types.ts";

const DIRS = ["/usr/lib", "/lib", "/usr/local/lib", "/usr/lib64", "/lib64"];

export const libstdcxxCheck: DoctorCheck = ({ probe }) => {
  if (!probe.target.endsWith("-musl")) return [];
  const found = (lib: string) => DIRS.find((d) => probe.exists(`${d}/${lib}`));
  const missing = ["libstdc++.so.6", "libgcc_s.so.1"].filter((l) => !found(l));
  if (!missing.length) return [{ check: "libstdc++", severity: "ok", message: "musl build: libstdc++ and libgcc_s are present" }];
  return [{
    check: "libstdc++", severity: "error", message: `musl build: ${missing.join(", ")} not found in ${DIRS.join(", ")}`,
    fix: "install them: apk add libstdc++ libgcc (Alpine), opkg install libstdcpp libgcc (OpenWrt)",
  }];
};
