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
MODULES=(virtio_pci virtio_blk virtio_net virtio_console virtio_rng button evdev isofs)
# Metapackage tracking the current bookworm cloud kernel; override with a
# concrete package name (e.g. linux-image-6.1.0-56-cloud-amd64) to pin.
KERNEL_META=${GROVE_GUEST_KERNEL_PKG:-linux-image-cloud-amd64}
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

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -m 777 "$tmp/dl" # apt drops to user _apt for downloads
log "downloading $kpkg busybox-static"
(cd "$tmp/dl" && apt-get download -q "$kpkg" busybox-static >&2)
dpkg -x "$tmp"/dl/"$kpkg"_*.deb "$tmp/k"
dpkg -x "$tmp"/dl/busybox-static_*.deb "$tmp/bb"

kdir='' busybox=''
for d in "$tmp"/k/lib/modules/* "$tmp"/k/usr/lib/modules/*; do [[ -d $d ]] && kdir=$d && break; done
[[ -n $kdir ]] || die "no modules directory in $kpkg"
kver=${kdir##*/}
[[ -f $tmp/k/boot/vmlinuz-$kver ]] || die "no vmlinuz in $kpkg"
for b in "$tmp"/bb/bin/busybox "$tmp"/bb/usr/bin/busybox; do [[ -f $b ]] && busybox=$b && break; done
[[ -n $busybox ]] || die "no busybox binary in busybox-static"

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
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/share/udhcpc,etc/acpi/PWRF,lib/modules} \
	"$r"/{dev,proc,sys,tmp,run,root,mnt/disk,var/log}
cp "$busybox" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
install -m 755 "$here/init" "$r/init"
for m in "${order[@]}"; do
	ko_cat "${modpath[$m]}" >"$r/lib/modules/$m.ko"
	echo "$m" >>"$r/etc/modules"
done

echo grove-guest >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgrove-guest\n' >"$r/etc/hosts"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$r/etc/group"
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
echo "$hash" >"$out/stamp"

log "built $out: kernel $(<"$out/kernel-version"), modules: ${order[*]}"
log "sizes: vmlinuz $(du -h "$out/vmlinuz" | cut -f1), initramfs.gz $(du -h "$out/initramfs.gz" | cut -f1)"
echo "$out"
