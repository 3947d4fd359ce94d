#!/usr/bin/env bash
# Captures byte fixtures for the IPVS codec: runs ipvsadm under `strace -e write/read=all`
# inside the ipvs-vm (Debian's IPVS kernel) and turns each run into
# test/fixtures/ipvs/<name>.txt (every netlink datagram sent and received, in hex, with the
# command that produced it). A developer tool, run by hand when the fixtures must change:
#   test/ipvs/capture-fixtures.sh
# It boots the VM from a separate cache (strace added to the image), so the shared cache that
# the test suite uses is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
vm=$root/../shared/tools/ipvs-vm
job=$(mktemp -d /tmp/vipd-ipvs-capture.XXXXXX)
trap 'rm -rf "$job"' EXIT

# name|command (run in this order: later cases depend on what earlier ones created)
cat >"$job/cases.txt" <<'CASES'
svc-add-tcp|ipvsadm -A -t 192.0.2.100:80 -s wrr
svc-edit-tcp|ipvsadm -E -t 192.0.2.100:80 -s rr
svc-add-udp|ipvsadm -A -u 192.0.2.101:53 -s rr
svc-add-fwmark|ipvsadm -A -f 42 -s wlc
svc-add-fwmark6|ipvsadm -A -f 43 -6 -s lc
svc-add-ipv6|ipvsadm -A -t [2001:db8::100]:443 -s lc
svc-add-persistent|ipvsadm -A -t 192.0.2.102:443 -s wlc -p 300 -M 255.255.255.0
svc-add-sh-flags|ipvsadm -A -t 192.0.2.103:80 -s sh -b sh-port,sh-fallback
svc-add-ops|ipvsadm -A -u 192.0.2.104:5060 -s rr -o
svc-add-pe-sip|ipvsadm -A -u 192.0.2.105:5060 -s rr -p 60 --pe sip
svc-add-persistent6|ipvsadm -A -t [2001:db8::102]:443 -s wrr -p 120 -M 64
dest-add-nat|ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.11:8080 -m -w 3 -x 100 -y 10
dest-add-dr|ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.12:80 -g -w 1
dest-add-tun|ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.13 -i -w 2
dest-add-tun-gue|ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.14 -i --tun-type gue --tun-port 6080 --tun-csum -w 4
dest-add-tun-gre|ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.15 -i --tun-type gre --tun-csum -w 5
dest-add-tun-gue-remcsum|ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.16 -i --tun-type gue --tun-port 6081 --tun-remcsum
dest-add-ipv6|ipvsadm -a -t [2001:db8::100]:443 -r [2001:db8::11]:443 -m -w 5
dest-add-fwmark|ipvsadm -a -f 42 -r 198.51.100.21 -g -w 1
dest-edit|ipvsadm -e -t 192.0.2.100:80 -r 198.51.100.11:8080 -m -w 7 -x 0 -y 0
dest-del|ipvsadm -d -t 192.0.2.100:80 -r 198.51.100.12:80
dump|ipvsadm -Ln
dump-fwmark-dests|ipvsadm -Ln -f 42
info|ipvsadm -Ln --stats
svc-del|ipvsadm -D -u 192.0.2.101:53
svc-del-fwmark|ipvsadm -D -f 43 -6
timeouts-set|ipvsadm --set 900 120 300
timeouts-get|ipvsadm -L --timeout
daemon-start-master|ipvsadm --start-daemon master --mcast-interface sync0 --syncid 5
daemon-start-backup|ipvsadm --start-daemon backup --mcast-interface sync0 --syncid 7 --sync-maxlen 1400 --mcast-group 239.1.2.3 --mcast-port 8850 --mcast-ttl 2
daemon-get|ipvsadm -L --daemon
daemon-stop-master|ipvsadm --stop-daemon master
daemon-stop-backup|ipvsadm --stop-daemon backup
dump-one|ipvsadm -Ln -t 192.0.2.100:80
err-svc-exists|ipvsadm -A -t 192.0.2.100:80 -s rr
err-svc-missing|ipvsadm -D -t 192.0.2.199:80
err-dest-missing|ipvsadm -d -t 192.0.2.100:80 -r 198.51.100.99:80
err-sched-missing|ipvsadm -A -t 192.0.2.110:80 -s nosuch
flush|ipvsadm -C
zero|ipvsadm -Z
CASES

cat >"$job/run.sh" <<'INNER'
#!/bin/bash
set -u
ip link add sync0 type dummy && ip link set sync0 multicast on up
uname -r >"$OUT/kernel.txt"; ipvsadm --version >"$OUT/ipvsadm-version.txt" 2>&1 || true
while IFS='|' read -r name cmd; do
  [[ -n $name ]] || continue
  echo "$cmd" >"$OUT/$name.cmd"
  strace -f -e trace=sendmsg,recvmsg,sendto,recvfrom -e write=all -e read=all -o "$OUT/$name.strace" $cmd >"$OUT/$name.stdout" 2>&1
  echo $? >"$OUT/$name.rc"
done </host/cases.txt
ipvsadm -Ln >"$OUT/final.txt" 2>&1
INNER
chmod +x "$job/run.sh"

echo "booting the VM (strace image in ${IPVS_VM_CACHE:=/tmp/ipvs-vm-strace-cache})" >&2
IPVS_VM_CACHE=$IPVS_VM_CACHE IPVS_VM_EXTRA_BINS=/usr/bin/strace IPVS_VM_QUIET=1 "$vm/run.sh" "$job" || { echo "VM run failed: exit $?" >&2; cat "$job/out/vm-console.log" >&2 || true; exit 1; }
"$root/node_modules/.bin/bun" "$root/test/ipvs/fixtures-from-strace.ts" "$job/out" "$root/test/fixtures/ipvs"
