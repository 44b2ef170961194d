#!/usr/bin/env bash
# Builds the Grove test guest: Debian's cloud kernel + a busybox initramfs.
#
#   test/guest/build.sh [--force]
#
# Output dir: ${GROVE_GUEST_DIR:-<repo>/.cache/test-guest} with vmlinuz,
# initramfs.gz, cmdline, kernel-version, stamp. Idempotent: does nothing when
# the outputs exist and `stamp` matches the hash of this script + ./init.
# Logs go to stderr; the output dir is printed on stdout.
# Debian/apt host only (bookworm). See test/guest/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${GROVE_GUEST_DIR:-$repo/.cache/test-guest}
force=${GROVE_GUEST_FORCE:-0}
[[ ${1:-} == --force ]] && force=1

# Kernel command line recommended for this guest (written to $out/cmdline).
CMDLINE='console=ttyS0 quiet panic=-1'
# Kernel modules the guest loads (the cloud kernel has these as =m; deps are
# resolved automatically). virtio_pci is the transport for all virtio-*-pci
# devices; button delivers the ACPI power button as an input event that
# acpid reads through evdev. isofs lets tests mount a cloud-init seed (ISO 9660)
# inside the guest.
MODULES=(virtio_pci virtio_blk virtio_net virtio_console virtio_rng virtio_input button evdev isofs)
# Metapackage tracking the current bookworm cloud kernel; override with a
# concrete package name (e.g. linux-image-6.1.0-56-cloud-amd64) to pin.
KERNEL_META=${GROVE_GUEST_KERNEL_PKG:-linux-image-cloud-amd64}
# The guest agent: Debian's own qemu-ga (the very binary a Debian cloud guest runs), with the shared
# libraries it loads, taken from these packages' .debs (never installed on the host).
AGENT_PKG=qemu-guest-agent
# Host packages: the build needs cpio, gzip and xz (for .ko.xz modules); the tests need QEMU.
HOST_PACKAGES=(cpio gzip xz-utils qemu-system-x86 qemu-utils)

log() { echo "test/guest/build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

outputs=(vmlinuz initramfs.gz cmdline)
hash=$(cat "$here/build.sh" "$here/init" | sha256sum | cut -d' ' -f1)
up_to_date() {
	local f
	for f in "${outputs[@]}"; do [[ -s $out/$f ]] || return 1; done
	[[ -f $out/stamp && $(<"$out/stamp") == "$hash" ]]
}

if [[ $force != 1 ]] && up_to_date; then
	log "up to date ($out)"
	echo "$out"
	exit 0
fi

mkdir -p "$out"
# Serialize concurrent builders (parallel test runners).
exec 9>"$out/.lock"
flock 9
if [[ $force != 1 ]] && up_to_date; then
	log "up to date ($out)"
	echo "$out"
	exit 0
fi

as_root() {
	if [[ $EUID -eq 0 ]]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root (or sudo) to run: $*"; fi
}
apt_updated=0
apt_update() {
	[[ $apt_updated == 1 ]] && return
	log "apt-get update"
	as_root apt-get update -qq >&2
	apt_updated=1
}

# --- host packages ----------------------------------------------------------
missing=()
for p in "${HOST_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	apt_update
	log "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- download kernel + busybox-static (.deb, not installed on the host) -------
apt-cache show "$KERNEL_META" >/dev/null 2>&1 || apt_update
apt-cache show busybox-static >/dev/null 2>&1 || apt_update
kpkg=$KERNEL_META
if [[ $kpkg != linux-image-[0-9]* ]]; then
	kpkg=$(apt-cache depends "$KERNEL_META" |
		awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	[[ -n $kpkg ]] || die "cannot resolve the kernel package behind $KERNEL_META"
fi

# qemu-ga and everything it depends on (run-time Depends only, followed recursively; Pre-Depends are
# packaging machinery). Only the libraries the loader really maps are copied into the guest.
apt-cache show "$AGENT_PKG" >/dev/null 2>&1 || apt_update
agent_pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
	--no-enhances --no-pre-depends "$AGENT_PKG" | grep -E '^[a-z0-9]' | sort -u)
[[ -n $agent_pkgs ]] || die "cannot resolve the dependencies of $AGENT_PKG"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -m 777 "$tmp/dl" "$tmp/dl/agent" # apt drops to user _apt for downloads
log "downloading $kpkg busybox-static $AGENT_PKG (+ $(($(wc -w <<<"$agent_pkgs") - 1)) packages)"
(cd "$tmp/dl" && apt-get download -q "$kpkg" busybox-static >&2)
# shellcheck disable=SC2086 # one package name per word
(cd "$tmp/dl/agent" && apt-get download -q $agent_pkgs >&2)
dpkg -x "$tmp"/dl/"$kpkg"_*.deb "$tmp/k"
dpkg -x "$tmp"/dl/busybox-static_*.deb "$tmp/bb"
for deb in "$tmp"/dl/agent/*.deb; do dpkg -x "$deb" "$tmp/ga"; done

kdir='' busybox=''
for d in "$tmp"/k/lib/modules/* "$tmp"/k/usr/lib/modules/*; do [[ -d $d ]] && kdir=$d && break; done
[[ -n $kdir ]] || die "no modules directory in $kpkg"
kver=${kdir##*/}
[[ -f $tmp/k/boot/vmlinuz-$kver ]] || die "no vmlinuz in $kpkg"
for b in "$tmp"/bb/bin/busybox "$tmp"/bb/usr/bin/busybox; do [[ -f $b ]] && busybox=$b && break; done
[[ -n $busybox ]] || die "no busybox binary in busybox-static"

# --- guest agent: qemu-ga + the shared objects the loader maps for it ---------
qga=$tmp/ga/usr/sbin/qemu-ga
[[ -x $qga ]] || die "no qemu-ga binary in $AGENT_PKG"
ldso=''
for l in "$tmp"/ga/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$tmp"/ga/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
	[[ -f $l ]] && ldso=$l && break
done
[[ -n $ldso ]] || die "no dynamic loader in the libc6 package"
# The packages' own loader lists the libraries (what ldd does), searching only the extracted packages,
# so the guest gets Debian's libraries, never the build host's.
libpath=$tmp/ga/lib/x86_64-linux-gnu:$tmp/ga/usr/lib/x86_64-linux-gnu
agent_libs=$("$ldso" --library-path "$libpath" --list "$qga") || die "the loader cannot list qemu-ga's libraries"
if grep -q 'not found' <<<"$agent_libs"; then
	die "qemu-ga needs libraries its packages lack: $(grep 'not found' <<<"$agent_libs" | tr -s ' \t\n' ' ')"
fi
agent_lib_files=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$agent_libs")
[[ -n $agent_lib_files ]] || die "no libraries listed for qemu-ga"

# --- modules: resolve dependencies from .modinfo, topological order ----------
declare -A modpath=() done_=()
while IFS= read -r -d '' f; do
	n=${f##*/}
	n=${n%.xz}
	n=${n%.ko}
	modpath[${n//-/_}]=$f
done < <(find "$kdir/kernel" \( -name '*.ko' -o -name '*.ko.xz' \) -print0)
((${#modpath[@]})) || die "no .ko/.ko.xz modules found in $kpkg"
# Uncompressed module bytes (busybox insmod in the guest wants plain .ko).
ko_cat() { if [[ $1 == *.xz ]]; then xz -dc "$1"; else cat "$1"; fi; }

order=()
add_module() {
	local m=${1//-/_} d deps
	[[ -n ${done_[$m]:-} ]] && return
	done_[$m]=1
	if [[ -z ${modpath[$m]:-} ]]; then
		if grep -q "/${m}\.ko\$\|/${m//_/-}\.ko\$" "$kdir/modules.builtin"; then
			log "module $m is built in"
			return
		fi
		die "module $m not found in $kpkg"
	fi
	deps=$(ko_cat "${modpath[$m]}" | tr '\0' '\n' | sed -n 's/^depends=//p')
	for d in ${deps//,/ }; do add_module "$d"; done
	order+=("$m")
}
for m in "${MODULES[@]}"; do add_module "$m"; done

# --- initramfs tree ---------------------------------------------------------
r=$tmp/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/share/udhcpc,etc/acpi/PWRF,lib/modules,lib64,lib/x86_64-linux-gnu} \
	"$r"/{dev,proc,sys,tmp,run,root,mnt/disk,var/log}
cp "$busybox" "$r/bin/busybox"
# /var/run is where qemu-ga keeps its state file (qga.state) and what most daemons expect.
ln -s ../run "$r/var/run"
ln -s busybox "$r/bin/sh"
install -m 755 "$here/init" "$r/init"
# qemu-ga's interpreter is /lib64/ld-linux-x86-64.so.2; the loader searches /lib/x86_64-linux-gnu.
install -m 755 "$qga" "$r/usr/sbin/qemu-ga"
install -m 755 "$ldso" "$r/lib64/ld-linux-x86-64.so.2"
for f in $agent_lib_files; do
	[[ ${f##*/} == ld-linux-x86-64.so.2 ]] && continue
	install -m 644 "$(readlink -f "$f")" "$r/lib/x86_64-linux-gnu/${f##*/}"
done
# Starts the agent as the guest's init does; tests that kill it start it again with this.
cat >"$r/sbin/start-qemu-ga" <<'EOS'
#!/bin/sh
exec qemu-ga -d -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -f /run/qemu-ga.pid -l /run/qemu-ga.log
EOS
chmod 755 "$r/sbin/start-qemu-ga"
# qemu-ga's guest-shutdown runs `/sbin/shutdown -h|-r -P +0 MSG`; busybox has poweroff and reboot only.
cat >"$r/sbin/shutdown" <<'EOS'
#!/bin/sh
# Enough of shutdown(8) for qemu-ga: -r reboots, anything else powers off (disks flushed first).
sync
mount -o remount,ro /mnt/disk 2>/dev/null
for a in "$@"; do [ "$a" = -r ] && exec reboot -f; done
exec poweroff -f
EOS
chmod 755 "$r/sbin/shutdown"

for m in "${order[@]}"; do
	ko_cat "${modpath[$m]}" >"$r/lib/modules/$m.ko"
	echo "$m" >>"$r/etc/modules"
done

echo grove-guest >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgrove-guest\n' >"$r/etc/hosts"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$r/etc/group"
# What the agent's guest-get-osinfo reports.
bbver=$("$busybox" | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p')
cat >"$r/etc/os-release" <<EOS
PRETTY_NAME="Grove test guest (busybox $bbver)"
NAME="Grove test guest"
ID=grove-test-guest
ID_LIKE=debian
VERSION_ID="1"
VERSION="1 (busybox $bbver)"
EOS
: >"$r/etc/resolv.conf"

cat >"$r/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM=vt100
export PS1='grove# '
# Wider than busybox line editing's 1024-char line limit + prompt, so echoed
# command lines never wrap (wrapping makes the line editor emit redraw codes).
stty cols 2048 rows 50 2>/dev/null
cd /root
EOF

# busybox acpid maps KEY_POWER to the action "PWRF/00000080" relative to its
# config dir (/etc/acpi) and execs it.
cat >"$r/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# ACPI power button (e.g. QMP system_powerdown): flush disks, power off now.
sync
mount -o remount,ro /mnt/disk 2>/dev/null
exec poweroff -f
EOF
chmod 755 "$r/etc/acpi/PWRF/00000080"

cat >"$r/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc hook: configure $interface from the lease.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" ${broadcast:+broadcast "$broadcast"}
	ip route del default dev "$interface" 2>/dev/null
	for r in $router; do ip route add default via "$r" dev "$interface" && break; done
	: >/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	;;
esac
exit 0
EOF
chmod 755 "$r/usr/share/udhcpc/default.script"

# Reproducible archive: fixed mtimes, sorted names, root-owned.
find "$r" -exec touch -h -d @0 {} +
(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
	gzip -9 -n >"$tmp/initramfs.gz"

# --- install outputs (stamp last, so a half-done build never looks valid) -----
rm -f "$out/stamp"
cp "$tmp/k/boot/vmlinuz-$kver" "$out/.vmlinuz.new" && mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$tmp/initramfs.gz" "$out/initramfs.gz"
echo "$CMDLINE" >"$out/cmdline"
echo "$kver ($kpkg $(dpkg-deb -f "$tmp"/dl/"$kpkg"_*.deb Version))" >"$out/kernel-version"
dpkg-deb -f "$tmp"/dl/agent/"$AGENT_PKG"_*.deb Version >"$out/agent-version"
echo "$hash" >"$out/stamp"

log "built $out: kernel $(<"$out/kernel-version"), qemu-ga $(<"$out/agent-version"), modules: ${order[*]}"
log "sizes: vmlinuz $(du -h "$out/vmlinuz" | cut -f1), initramfs.gz $(du -h "$out/initramfs.gz" | cut -f1)"
echo "$out"
