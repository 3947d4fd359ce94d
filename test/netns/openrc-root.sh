#!/bin/sh
# Builds a scratch root in which Debian's openrc (unpacked, never installed) can manage
# /etc/init.d/vipd, then stays in it as the pid namespace's init until killed or LIFETIME
# seconds pass. Run it as root through
#   ip netns exec NS unshare --mount --propagation private --pid --fork openrc-root.sh ...
# so every mount lives in a private mount namespace and every process it leaves (openrc,
# supervise-daemon, vipd) dies with it. The host's / is the read-only lower layer of an
# overlay whose upper layer is a tmpfs: nothing written in the scratch root reaches the host.
# Commands run inside with `nsenter -t PID -m -p -n -r -w` (PID: this process).
#
#   openrc-root.sh BASE OPENRC_TREE VIPD_BIN INITD CONFD CONFIG LIFETIME_S
#     BASE         an empty directory (a tmpfs is mounted on it)
#     OPENRC_TREE  `dpkg-deb -x` of openrc, librc1, libeinfo1
set -eu
[ $# -eq 7 ] || { echo "usage: $0 BASE OPENRC_TREE VIPD_BIN INITD CONFD CONFIG LIFETIME_S" >&2; exit 2; }
base=$1 tree=$2 vipd=$3 initd=$4 confd=$5 config=$6 lifetime=$7
[ "$$" = 1 ] || { echo "$0: must be pid 1 of a new pid namespace (unshare --pid --fork)" >&2; exit 2; }
root=$base/root

mount -t tmpfs -o mode=0755 vipdt-openrc "$base"
mkdir "$base/upper" "$base/work" "$root"
mount -t overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" vipdt-openrc "$root"

# OpenRC's files at its hardcoded paths (/lib/rc, /sbin/openrc-run, /etc/rc.conf, ...).
# On a merged-/usr host /lib and /sbin are symlinks, which tar must follow, not replace.
tar -C "$tree" -cf - lib sbin etc/rc.conf etc/runlevels | tar -C "$root" -xf - --keep-directory-symlink

mount -t proc -o nosuid,nodev,noexec proc "$root/proc" # this pid namespace's processes
# A /dev of its own: the few device nodes bound in, nothing writable on the host's devtmpfs.
mount -t tmpfs -o mode=0755,nosuid vipdt-openrc "$root/dev"
for n in null zero full random urandom tty; do
	: >"$root/dev/$n"
	mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev vipdt-openrc "$root/dev/shm"
# The sysfs `ip netns exec` mounted for this netns, and an empty cgroup directory:
# openrc-run moves services into cgroups it finds there, which would be the host's.
mount --bind /sys "$root/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec vipdt-openrc "$root/sys/fs/cgroup"
# Fresh, empty state: no host init scripts, no host /run or /tmp.
for d in run tmp etc/init.d; do mount -t tmpfs -o mode=0755,nosuid,nodev vipdt-openrc "$root/$d"; done
chmod 1777 "$root/tmp"
mkdir -p "$root/etc/conf.d" "$root/etc/keepalived"
# Debian's librc reads it for LSB headers; an empty one keeps its complaints out of the output.
[ -e "$root/etc/insserv.conf" ] || : >"$root/etc/insserv.conf"

# vipd as an Alpine operator installs it (INSTALL), plus the drop-in keepalived symlink.
: >"$root/usr/sbin/vipd"
mount --bind -o ro "$vipd" "$root/usr/sbin/vipd"
ln -sf vipd "$root/usr/sbin/keepalived"
install -m 755 "$initd" "$root/etc/init.d/vipd"
install -m 644 "$confd" "$root/etc/conf.d/vipd"
install -m 644 "$config" "$root/etc/keepalived/keepalived.conf"

# Alpine's `networking` provides `net` (vipd needs it); the test set up the interfaces.
cat >"$root/etc/init.d/networking" <<'EOF'
#!/sbin/openrc-run
description="Stand-in for Alpine's networking: the test configured the interfaces"
depend() {
	provide net
}
start() {
	ebegin "Bringing up network interfaces (stub)"
	eend 0
}
stop() {
	ebegin "Bringing down network interfaces (stub)"
	eend 0
}
EOF
chmod 755 "$root/etc/init.d/networking"

# pid 1 inside the scratch root (ready once chrooted); the shell reaps the orphans that get
# reparented to it.
# shellcheck disable=SC2016 # expanded by the inner shell
exec chroot "$root" /bin/sh -c 'echo "openrc-root: ready"; i=0; while [ "$i" -lt "$1" ]; do sleep 1; i=$((i + 1)); done' sh "$lifetime"
