#!/usr/bin/env bash
# Builds a bootable Debian 12 (bookworm) x86-64 cloud disk image from Debian
# packages, shaped like the official "genericcloud" image: one MBR partition
# with ext4 root, GRUB for BIOS, the cloud kernel, systemd, cloud-init
# (NoCloud), systemd-networkd, OpenSSH and the QEMU guest agent.
#
#   test/distro/build-debian.sh [--force]
#
# Output dir: ${GROVE_DEBIAN_DIR:-<repo>/.cache/debian-12} with debian-12.qcow2,
# SHA512SUMS (GNU format, as Debian publishes), debian-12.packages (what is
# installed), build-info and stamp. Idempotent: does nothing when the outputs
# exist and `stamp` matches the hash of this script.
# Logs go to stderr; the output dir is printed on stdout.
# Needs root for loop devices, mount and chroot (re-runs itself with sudo when
# not root and the image is out of date). Debian/apt host (bookworm).
# See test/distro/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${GROVE_DEBIAN_DIR:-$repo/.cache/debian-12}
force=${GROVE_DEBIAN_FORCE:-0}
[[ ${1:-} == --force ]] && force=1

SUITE=bookworm
IMAGE=debian-12.qcow2
DISK_SIZE=2G
# Same kernel command line as the official cloud images: the last console= is
# /dev/console, so systemd and cloud-init write to the serial port.
KERNEL_CMDLINE='console=tty0 console=ttyS0,115200n8'
# Packages of the image (Recommends are not installed: each one is listed).
# No netplan.io, unlike the official image: without it cloud-init writes
# systemd-networkd files itself, which saves the 3-5 s (TCG) `netplan generate`
# run on the way to the network stage of every first boot.
PACKAGES=(
	systemd-sysv udev dbus systemd-resolved
	linux-image-cloud-amd64 initramfs-tools zstd grub-pc
	cloud-init cloud-guest-utils tzdata locales
	iproute2 netbase iputils-ping
	qemu-guest-agent
	openssh-server openssh-sftp-server
	sudo ca-certificates
	e2fsprogs mount fdisk kmod procps less
)
# Timers and services a short-lived test VM does not need; under TCG they only
# compete with cloud-init for the CPU.
DISABLE_UNITS=(apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service
	fstrim.timer dpkg-db-backup.timer)
# Early-boot units for what a VM here never uses (debug/trace filesystems, huge
# pages, binfmt, DRM/FUSE/pstore/device-mapper/configfs module loads). Each one
# forks a `mount` or `modprobe` that costs 0.3-0.9 s of CPU under TCG while
# cloud-init starts. FUSE and device-mapper still load on first use.
MASK_UNITS=(sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount dev-hugepages.mount
	proc-sys-fs-binfmt_misc.automount systemd-binfmt.service
	modprobe@drm.service modprobe@fuse.service modprobe@efi_pstore.service modprobe@dm_mod.service
	modprobe@configfs.service)
# Host packages: mmdebstrap builds the root, sfdisk/partx/losetup/mkfs make the
# disk, qemu-img converts it.
HOST_PACKAGES=(mmdebstrap debian-archive-keyring fdisk util-linux e2fsprogs mount qemu-utils)

log() { echo "test/distro/build-debian.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

outputs=("$IMAGE" SHA512SUMS)
hash=$(sha256sum <"$here/build-debian.sh" | cut -d' ' -f1)
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

# Loop devices, mount and chroot need root.
if [[ $EUID -ne 0 ]]; then
	command -v sudo >/dev/null || die "run as root (or with sudo): the build uses loop devices, mount and chroot"
	exec sudo --preserve-env=GROVE_DEBIAN_DIR,GROVE_DEBIAN_FORCE,GROVE_DEBIAN_MIRROR,GROVE_DEBIAN_SECURITY_MIRROR \
		bash "$here/build-debian.sh" "$@"
fi

mkdir -p "$out"
# Serialize concurrent builders (parallel test runners, several worktrees).
exec 9>"$out/.lock"
flock 9
if [[ $force != 1 ]] && up_to_date; then
	log "up to date ($out)"
	echo "$out"
	exit 0
fi

apt_updated=0
apt_update() {
	[[ $apt_updated == 1 ]] && return
	log "apt-get update"
	apt-get update -qq >&2
	apt_updated=1
}

# A builder killed with SIGKILL (no trap) leaves its work dir, maybe mounted and
# on a loop device. Holding the lock, every work dir here is such a leftover.
for stale in "$out"/.build.*; do
	[[ -d $stale ]] || continue
	log "removing leftover $stale"
	mountpoint -q "$stale/mnt" && { umount -R "$stale/mnt" || umount -R -l "$stale/mnt"; }
	for l in $(losetup -j "$stale/disk.raw" -O NAME -n 2>/dev/null); do
		partx -d "$l" 2>/dev/null || true
		losetup -d "$l"
	done
	rm -rf "$stale"
done

# --- host packages ----------------------------------------------------------
missing=()
for p in "${HOST_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	apt_update
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- mirrors: the ones this machine's apt uses --------------------------------
# First URI of a sources entry (deb822 or one-line) whose suites include $1.
host_mirror() {
	local suite=$1 f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		if [[ $f == *.sources ]]; then
			awk -v s="$suite" '
				/^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
				tolower($1) == "uris:" { u = $2 }
				tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
				END { if (u != "" && ok) print u }' "$f"
		else
			awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
				if ($(i + 1) == s) { print $i; exit } }' "$f"
		fi
	done | head -n1
}
MIRROR=${GROVE_DEBIAN_MIRROR:-$(host_mirror "$SUITE")}
SECURITY_MIRROR=${GROVE_DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
log "mirrors: $MIRROR, $SECURITY_MIRROR"

# --- work area and cleanup ----------------------------------------------------
started=$(date +%s)
work=$(mktemp -d "$out/.build.XXXXXX")
mnt=$work/mnt
loop=''
cleanup() {
	set +e
	if mountpoint -q "$mnt"; then
		# Only our own mounts live under $mnt (no rbind), so a recursive umount cannot reach the host's.
		umount -R "$mnt" || umount -R -l "$mnt"
	fi
	if [[ -n $loop ]]; then
		partx -d "$loop" 2>/dev/null
		losetup -d "$loop"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$mnt"

# --- disk: MBR, one bootable Linux partition from 1 MiB, ext4 -----------------
raw=$work/disk.raw
truncate -s "$DISK_SIZE" "$raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw" >&2
loop=$(losetup --find --show --partscan "$raw")
# Kernels without the MBR parser (or without partscan on loop) need the
# partition added by hand.
[[ -b ${loop}p1 ]] || partx -a "$loop"
[[ -b ${loop}p1 ]] || die "no partition device ${loop}p1"
mkfs.ext4 -q -L root "${loop}p1" >&2
uuid=$(blkid -s UUID -o value "${loop}p1")
mount "${loop}p1" "$mnt"
log "disk: $loop, root ${loop}p1 UUID=$uuid"

# --- root filesystem ------------------------------------------------------------
rmdir "$mnt/lost+found" # mmdebstrap wants an empty target; mklost+found puts it back
sources="deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main"
include=$(
	IFS=,
	echo "${PACKAGES[*]}"
)
log "mmdebstrap $SUITE (${#PACKAGES[@]} packages)"
mmdebstrap --mode=root --variant=apt --format=directory \
	--aptopt='APT::Install-Recommends "false"' \
	--aptopt='Acquire::Check-Valid-Until "false"' \
	--include="$include" \
	"$SUITE" "$mnt" - <<<"$sources" >&2
(cd "$mnt" && mklost+found >/dev/null)

# --- configuration ------------------------------------------------------------
cat >"$mnt/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
# fsck pass 0: the ext4 journal keeps the root consistent; a boot-time fsck
# only costs time under TCG.
UUID=$uuid / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 0
EOF
echo localhost >"$mnt/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' >"$mnt/etc/hosts"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$mnt/etc/resolv.conf"
echo 'LANG=C.UTF-8' >"$mnt/etc/default/locale"

# GRUB: no menu wait, kernel and GRUB on the serial port.
cat >"$mnt/etc/default/grub" <<EOF
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$KERNEL_CMDLINE"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF

# A small initramfs with just the drivers a VM's root disk needs (virtio-blk,
# virtio-scsi, SATA/IDE; NVMe and ext4 are built in) instead of MODULES=most:
# GRUB reads it through BIOS calls, slow under TCG, and the kernel unpacks it.
# (MODULES=dep cannot work here: at build time the root is a loop device.)
echo 'MODULES=list' >"$mnt/etc/initramfs-tools/conf.d/grove-modules.conf"
printf '%s\n' virtio_pci virtio_blk virtio_scsi sd_mod ahci ata_piix >>"$mnt/etc/initramfs-tools/modules"

# cloud-init: only NoCloud (a cidata disk) and the None fallback, so it never
# waits for a metadata server on the network.
cat >"$mnt/etc/cloud/cloud.cfg.d/90_dpkg.cfg" <<'EOF'
# to update this file, run dpkg-reconfigure cloud-init
datasource_list: [ NoCloud, None ]
EOF

# Each VM gets its own SSH host keys, made by cloud-init on first boot: Ed25519
# and ECDSA only. RSA-3072 costs 3-7 s of prime search under TCG, on the path to
# SSH-ready, and DSA is obsolete; every OpenSSH since 6.5 speaks Ed25519.
cat >"$mnt/etc/cloud/cloud.cfg.d/50_grove_ssh.cfg" <<'EOF'
ssh_genkeytypes: [ed25519, ecdsa]
EOF
rm -f "$mnt"/etc/ssh/ssh_host_*
# A boot without cloud-init still gets host keys.
mkdir -p "$mnt/etc/systemd/system/ssh.service.d"
cat >"$mnt/etc/systemd/system/ssh.service.d/host-keys.conf" <<'EOF'
[Service]
ExecStartPre=/bin/sh -c 'ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A'
EOF

# No root password (locked); logins are by cloud-init's user and key.
chroot "$mnt" usermod -p '*' root

# Each VM gets its own machine-id (empty file: systemd makes one on first boot).
: >"$mnt/etc/machine-id"
rm -f "$mnt/var/lib/dbus/machine-id"

# --- boot loader: grub-install onto the loop disk, grub.cfg ---------------------
# A private /dev with just the nodes GRUB probes (plus the by-uuid link udev
# would make, which grub-mkconfig checks before writing root=UUID=...).
mount -t tmpfs -o mode=755 dev "$mnt/dev"
cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom "$loop" "${loop}p1" "$mnt/dev/"
mkdir -p "$mnt/dev/disk/by-uuid"
ln -s "../../${loop##*/}p1" "$mnt/dev/disk/by-uuid/$uuid"
mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
chroot "$mnt" systemctl enable ssh.service systemd-networkd.service systemd-resolved.service >&2
for u in "${DISABLE_UNITS[@]}"; do
	[[ -n $(chroot "$mnt" systemctl list-unit-files --no-legend "$u") ]] && chroot "$mnt" systemctl disable "$u" >&2
done
chroot "$mnt" systemctl mask "${MASK_UNITS[@]}" >&2
chroot "$mnt" update-initramfs -u -k all >&2
chroot "$mnt" grub-install --target=i386-pc "$loop" >&2
chroot "$mnt" update-grub >&2
grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg" || die "grub.cfg does not boot root=UUID=$uuid"
chroot "$mnt" dpkg-query -W -f='${Package}\t${Version}\n' >"$work/packages"
kernel=$(chroot "$mnt" dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' 'linux-image-[0-9]*' |
	awk '$1 == "ii" { print $2, $3 }')
umount "$mnt/sys" "$mnt/proc" "$mnt/dev"

# --- smaller image: drop caches and logs, discard free blocks -----------------
rm -rf "$mnt"/var/lib/apt/lists/* "$mnt"/var/cache/apt/*.bin "$mnt"/var/cache/apt/archives/*.deb \
	"$mnt"/var/log/apt/* "$mnt"/var/log/dpkg.log "$mnt"/var/log/alternatives.log "$mnt"/tmp/* "$mnt"/root/.bash_history
fstrim "$mnt" >&2 || log "fstrim failed; the image is larger but fine"
umount "$mnt"
e2fsck -fy "${loop}p1" >&2 || [[ $? -le 1 ]] || die "e2fsck found errors"
partx -d "$loop" 2>/dev/null || true
losetup -d "$loop"
loop=''

log "qemu-img convert to compressed qcow2"
qemu-img convert -c -O qcow2 "$raw" "$work/$IMAGE"
(cd "$work" && sha512sum "$IMAGE" >SHA512SUMS)

# --- install outputs (stamp last, so a half-done build never looks valid) -----
rm -f "$out/stamp"
mv -f "$work/$IMAGE" "$out/$IMAGE"
mv -f "$work/SHA512SUMS" "$out/SHA512SUMS"
mv -f "$work/packages" "$out/debian-12.packages"
took=$(($(date +%s) - started))
size=$(stat -c %s "$out/$IMAGE")
cat >"$out/build-info" <<EOF
suite: $SUITE
mirror: $MIRROR
kernel: $kernel
kernel-cmdline: $KERNEL_CMDLINE
virtual-size: $DISK_SIZE
image-bytes: $size
build-seconds: $took
built: $(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
echo "$hash" >"$out/stamp"

log "built $out/$IMAGE in ${took}s: $((size / 1024 / 1024)) MiB, $kernel, $(wc -l <"$out/debian-12.packages") packages"
echo "$out"
