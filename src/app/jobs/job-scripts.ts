/**
 * The POSIX sh programs behind durable jobs (busybox ash and dash alike). The guest agent returns a
 * process's output only once it has ended, and forgets its exit status once reported; so the command runs
 * under a small wrapper that sends its output to files in the guest (which Grove reads on at an offset
 * while it runs) and writes its exit status to a file (which outlives the agent's memory of it).
 * Every value is an argument ("$1"), never program text.
 */
import { STOP_DESCENDANTS } from '../agent/guest-scripts.js';

export const JOB_SCRIPT_NAME = 'grove-job';

/** Where a job's files live in the guest while it runs. */
export const GUEST_JOBS_DIR = '/tmp/grove-jobs';

/**
 * $1 job folder, $2 interactive stdin (1|0), then the command. Interactive: stdin is a FIFO the wrapper
 * also holds open for writing (so a command that reads it waits for more instead of seeing its end, and
 * Grove's writes never block), until SIGUSR1 makes the wrapper let go: the end of the input. Otherwise the
 * command gets the wrapper's own stdin (the agent's input-data). `pid` is written once the trap is set, so
 * its presence says the wrapper is ready; `exit` holds the status, moved into place whole.
 * An asynchronous command in a non-interactive shell would read /dev/null, hence fd 4. The FIFO's read end
 * (fd 5) is opened before the fork: opened by the command after an early end of input, it would wait for a
 * writer forever.
 * The command's status comes from a subshell's `status` file: SIGUSR1 interrupts the wrapper's `wait`
 * (which then returns 138), and by then the shell may have reaped the command, losing its real status;
 * the wrapper's `wait` status counts only when the subshell itself was killed. The subshell catches (does not
 * ignore, which the command would inherit) the signals a caller may send, so it outlives the command they end.
 */
export const JOB_RUN = `
d=$1 open=$2
shift 2
trap 'exec 3>&-' USR1
mkdir -p "$d" || exit 126
: >>"$d/stdout" && : >>"$d/stderr" || exit 126
if [ "$open" = 1 ]; then
  rm -f "$d/stdin"
  mkfifo -m 600 "$d/stdin" || exit 126
  exec 3<>"$d/stdin" 5<"$d/stdin"
  (trap : HUP INT QUIT TERM USR1 USR2; exec 3>&-; "$@" <&5 >>"$d/stdout" 2>>"$d/stderr" 5<&-; echo $? >"$d/status") &
  exec 5<&-
else
  exec 4<&0
  (trap : HUP INT QUIT TERM USR1 USR2; "$@" <&4 >>"$d/stdout" 2>>"$d/stderr" 4<&-; echo $? >"$d/status") &
fi
c=$!
echo "$c" >"$d/pid"
while :; do
  wait "$c"
  w=$?
  kill -0 "$c" 2>/dev/null || break
done
s=
[ -s "$d/status" ] && read -r s <"$d/status"
[ -n "$s" ] || s=$w
echo "$s" >"$d/exit.new" && mv -f "$d/exit.new" "$d/exit"
exit "$s"
`;

/**
 * $1 job folder, $2 signal. Signals the command and every process it started: stopped first, pass after
 * pass (so none can fork away), then signalled and continued. Nothing to do once it has ended.
 */
export const SIGNAL_JOB = `
d=$1 sig=$2
i=0
while [ ! -s "$d/pid" ]; do
  [ -e "$d/exit" ] && exit 0
  i=$((i + 1))
  [ "$i" -gt 100 ] && exit 3
  sleep 0.05
done
read -r p <"$d/pid"
[ -e "$d/exit" ] && exit 0
all=" $p "
kill -STOP "$p" 2>/dev/null || exit 0${STOP_DESCENDANTS}kill -"$sig" $all 2>/dev/null
kill -CONT $all 2>/dev/null
exit 0
`;

/** $1 job folder, $2 the wrapper's pid: ends the command's input (once the wrapper has set its trap). */
export const CLOSE_STDIN = `
i=0
while [ ! -e "$1/pid" ]; do
  i=$((i + 1))
  [ "$i" -gt 100 ] && exit 3
  sleep 0.05
done
kill -USR1 "$2" 2>/dev/null
exit 0
`;

/** $1 job folder: removed once its output and status are safe on the host. */
export const REMOVE_JOB_DIR = 'exec rm -rf -- "$1"';
