/**
 * What a fork's child changes in its guest once its agent answers, so it is a new machine and not a
 * second copy of its parent on the network or in logs. POSIX sh with busybox fallbacks; every step says
 * what it did (`ok`), or why not (`skipped`, `failed`), on one line: `<item> <status> <detail>`.
 *
 * - entropy: the host's random bytes (stdin) are written into /dev/urandom: the children share their
 *   parent's RNG state at the moment of the fork, and would otherwise draw the same "random" numbers.
 * - hostname: set to the child's VM name (`hostnamectl` where systemd runs, else `hostname` and
 *   /etc/hostname).
 * - machine-id: a new /etc/machine-id (and /var/lib/dbus/machine-id when it is a file of its own), drawn on
 *   the host: the guest's own RNG would give every child the same one (it is reseeded only later).
 * - mac: the NIC carrying the default route gets the child's own MAC (its RAM came with the parent's).
 *   Network configuration that names the old MAC (cloud-init matches its systemd-networkd and netplan
 *   files by MAC) is rewritten to the new one first: systemd-networkd would otherwise stop managing the
 *   NIC the moment its MAC changes, and drop its address and routes (seen on Debian 12).
 * - dhcp: a lease is taken under that MAC: systemd-networkd reloads its files and reconfigures the NIC
 *   (a fresh DHCP exchange; the step waits up to 30 s for the default route to come back), else
 *   udhcpc released and renewed (SIGUSR2, SIGUSR1), else dhclient.
 * - ssh-host-keys (only when asked): new host keys (`ssh-keygen -A`), and the SSH server reloaded.
 * - port-forwards (Grove's own step, after the script, for VMs with forwards): QEMU's user network came with
 *   the parent's DHCP table (its NAT state is migrated), where the first address still belongs to the
 *   parent's MAC, so the child's lease is another address (10.0.2.16); the child's host port forwards,
 *   aimed at 10.0.2.15 when its QEMU started, are aimed at the address the guest now has.
 */
export const REIDENTIFY_ITEMS = ['entropy', 'hostname', 'machine-id', 'mac', 'dhcp', 'ssh-host-keys', 'port-forwards'] as const;
export type ReidentifyItem = (typeof REIDENTIFY_ITEMS)[number];

export const REIDENTIFY_SCRIPT = String.raw`
name=$1 mac=$2 keys=$3 id=$4
say() { echo "$1 $2 $3"; }
# Polls count naps, not the guest's clock: a fork's child may see its wall clock jump as it catches up.
if sleep 0.1 2>/dev/null; then nap=0.1 naps=10; else nap=1 naps=1; fi
route_back() { n=$(($1 * naps)); while [ $n -gt 0 ] && [ -z "$(ip route show default dev "$dev" 2>/dev/null)" ]; do sleep $nap; n=$((n - 1)); done; [ -n "$(ip route show default dev "$dev" 2>/dev/null)" ]; }
if cat >/dev/urandom 2>/dev/null; then say entropy ok "64 bytes from the host"; else say entropy failed "cannot write /dev/urandom"; fi
if command -v hostnamectl >/dev/null 2>&1 && hostnamectl set-hostname "$name" >/dev/null 2>&1; then
  say hostname ok "hostnamectl: $name"
elif hostname "$name" 2>/dev/null; then
  [ -f /etc/hostname ] && { echo "$name" >/etc/hostname 2>/dev/null || true; }
  say hostname ok "hostname: $name"
else
  say hostname failed "hostname refused"
fi
if [ -e /etc/machine-id ]; then
  if echo "$id" >/etc/machine-id 2>/dev/null; then
    [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ] && echo "$id" >/var/lib/dbus/machine-id
    say machine-id ok "$id"
  else
    say machine-id failed "/etc/machine-id not writable"
  fi
else
  say machine-id skipped "no /etc/machine-id in this guest"
fi
dev=$(ip route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
[ -n "$dev" ] || dev=$(ls /sys/class/net 2>/dev/null | grep -v '^lo$' | head -n 1)
if [ -z "$dev" ]; then
  say mac skipped "no network interface"
  say dhcp skipped "no network interface"
else
  old=$(cat "/sys/class/net/$dev/address" 2>/dev/null)
  conf=""
  if [ -n "$old" ] && [ "$old" != "$mac" ]; then
    for f in $(grep -ril "$old" /etc/systemd/network /run/systemd/network /etc/netplan /etc/udev/rules.d 2>/dev/null); do
      sed -i "s/$old/$mac/gI" "$f" 2>/dev/null && conf="$conf $f"
    done
  fi
  [ -n "$conf" ] && conf=" (rewritten:$conf)"
  if ip link set dev "$dev" address "$mac" 2>/dev/null; then say mac ok "$dev $mac$conf"; else say mac failed "$dev refused $mac"; fi
  if command -v networkctl >/dev/null 2>&1 && networkctl reload >/dev/null 2>&1 && networkctl reconfigure "$dev" >/dev/null 2>&1; then
    if route_back 30; then
      say dhcp ok "networkctl reconfigure $dev: $(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{print $4}' | head -n 1)"
    else
      say dhcp failed "networkctl reconfigure $dev: no default route after 30 s"
    fi
  elif pid=$(pidof udhcpc 2>/dev/null) && [ -n "$pid" ]; then
    # A renew alone asks for the parent's lease, which the server may refuse (NAK), and udhcpc then sleeps
    # 3 s before it starts over. Release, then renew from the released state: a fresh discover at once,
    # under the MAC udhcpc reads again for it. The renew is sent once the release has dropped the address:
    # signals pending together arrive lowest first, and a renew before the release would end unleased.
    # The default route, dropped here, is back when udhcpc is bound again.
    ip route del default dev "$dev" 2>/dev/null
    if kill -USR2 $pid; then
      n=$((5 * naps))
      while [ $n -gt 0 ] && [ -n "$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null)" ]; do sleep $nap; n=$((n - 1)); done
    fi
    if kill -USR1 $pid; then
      if route_back 20; then
        say dhcp ok "udhcpc release + renew (pid $pid): $(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{print $4}' | head -n 1)"
      else
        say dhcp failed "udhcpc (pid $pid): no default route after 20 s"
      fi
    else
      say dhcp failed "udhcpc (pid $pid) not signalled"
    fi
  elif command -v dhclient >/dev/null 2>&1; then
    dhclient -1 "$dev" >/dev/null 2>&1 && say dhcp ok "dhclient $dev" || say dhcp failed "dhclient $dev"
  else
    say dhcp skipped "no DHCP client running"
  fi
fi
if [ "$keys" = 1 ]; then
  if command -v ssh-keygen >/dev/null 2>&1; then
    rm -f /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub
    if ssh-keygen -A >/dev/null 2>&1; then
      (systemctl reload ssh || systemctl reload sshd || kill -HUP $(cat /run/sshd.pid)) >/dev/null 2>&1
      say ssh-host-keys ok "$(ls /etc/ssh/ssh_host_*key.pub 2>/dev/null | wc -l) new key pairs"
    else
      say ssh-host-keys failed "ssh-keygen -A failed"
    fi
  else
    say ssh-host-keys skipped "no ssh-keygen in this guest"
  fi
fi
`;

export interface ReidentifyStep {
  item: ReidentifyItem;
  status: 'ok' | 'skipped' | 'failed';
  detail: string;
}

/** The script's lines as steps; lines it did not write (a guest's noise) are ignored. */
export function parseReidentify(out: string): ReidentifyStep[] {
  const steps: ReidentifyStep[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S+) (ok|skipped|failed) ?(.*)$/.exec(line.trim());
    if (m && (REIDENTIFY_ITEMS as readonly string[]).includes(m[1]!)) steps.push({ item: m[1] as ReidentifyItem, status: m[2] as ReidentifyStep['status'], detail: m[3]! });
  }
  return steps;
}
