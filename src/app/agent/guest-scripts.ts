/**
 * The guest agent has no commands to list, delete or make directories, or to kill a process tree, so
 * Grove runs these small POSIX sh programs through guest-exec. They use only what both busybox and
 * Debian's coreutils/util-linux provide, take every path as an argument (`"$1"`, never spliced into the
 * program text), and report the failures callers tell apart as errno-numbered exit codes.
 */
export const EXIT = { ENOENT: 44, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EACCES: 13, ENOTEMPTY: 39 } as const;

/** `$0` of every script, so the guest's process list says who runs it. */
export const SCRIPT_NAME = 'grove-agent';

/**
 * $1 directory. Prints the entry names NUL-terminated, one more NUL, then one `stat` line per entry in
 * the same order: `<raw mode hex> <size> <mtime> <uid> <gid> <links>`. Names never pass through a line,
 * so any byte but NUL and / is safe in them.
 */
export const LIST_DIR = `
[ -e "$1" ] || [ -L "$1" ] || exit ${EXIT.ENOENT}
[ -d "$1" ] || exit ${EXIT.ENOTDIR}
cd "$1" 2>/dev/null || exit ${EXIT.EACCES}
set -- * .[!.]* ..?*
for f do
  shift
  if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi
done
[ $# -eq 0 ] && exit 0
printf '%s\\0' "$@"
printf '\\0'
exec stat -c '%f %s %Y %u %g %h' -- "$@"
`;

/** $1 path, $2 recursive (1|0). A non-empty directory without recursive is ENOTEMPTY. */
export const REMOVE = `
p=$1
[ -e "$p" ] || [ -L "$p" ] || exit ${EXIT.ENOENT}
if [ -d "$p" ] && [ ! -L "$p" ]; then
  [ "$2" = 1 ] && exec rm -rf -- "$p"
  [ -z "$(ls -A -- "$p")" ] || exit ${EXIT.ENOTEMPTY}
  exec rmdir -- "$p"
fi
exec rm -f -- "$p"
`;

/** $1 path, $2 parents (1|0), $3 mode ('' for the default). Exit 0 and prints `exists` when -p finds it there. */
export const MKDIR = `
p=$1 parents=$2 mode=$3
if [ "$parents" = 1 ]; then
  if [ -d "$p" ]; then echo exists; exit 0; fi
  [ -e "$p" ] || [ -L "$p" ] && exit ${EXIT.EEXIST}
  if [ -n "$mode" ]; then exec mkdir -p -m "$mode" -- "$p"; fi
  exec mkdir -p -- "$p"
fi
[ -e "$p" ] || [ -L "$p" ] && exit ${EXIT.EEXIST}
parent=\${p%/*}
[ -n "$parent" ] || parent=/
if [ ! -d "$parent" ]; then
  [ -e "$parent" ] && exit ${EXIT.ENOTDIR}
  exit ${EXIT.ENOENT}
fi
if [ -n "$mode" ]; then exec mkdir -m "$mode" -- "$p"; fi
exec mkdir -- "$p"
`;

/**
 * $1 the uploaded temporary file, $2 its destination, $3 mode ('' keeps the destination's, or 644 for a
 * new file: agents run with different umasks), $4 overwrite (1|0). The rename is atomic; without overwrite a hard link
 * puts the file in place only if nothing is there (no window in which another writer is clobbered).
 * The temporary file is gone afterwards either way.
 */
export const FINISH_UPLOAD = `
tmp=$1 dst=$2 mode=$3
if [ -d "$dst" ] && [ ! -L "$dst" ]; then rm -f -- "$tmp"; exit ${EXIT.EISDIR}; fi
if [ -z "$mode" ]; then
  mode=644
  if [ -e "$dst" ]; then mode=$(stat -L -c %a -- "$dst") || mode=644; fi
fi
if ! chmod "$mode" "$tmp"; then rm -f -- "$tmp"; exit 1; fi
if [ "$4" = 1 ]; then
  mv -f -T -- "$tmp" "$dst" && exit 0
  rm -f -- "$tmp"
  exit 1
fi
if ln -n -- "$tmp" "$dst" 2>/dev/null; then rm -f -- "$tmp"; exit 0; fi
rm -f -- "$tmp"
[ -e "$dst" ] || [ -L "$dst" ] && exit ${EXIT.EEXIST}
exit 1
`;

/**
 * With all=" <pid> " set and that process stopped: stops, pass after pass, every process whose parent
 * is already in all (so none can fork away) and adds it to all.
 */
export const STOP_DESCENDANTS = `
more=1
while [ "$more" = 1 ]; do
  more=0
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    rest=\${line##*) }
    rest=\${rest#* }
    ppid=\${rest%% *}
    pid=\${f#/proc/}
    pid=\${pid%/stat}
    case $all in *" $pid "*) continue ;; esac
    case $all in *" $ppid "*) all="$all$pid "; kill -STOP "$pid" 2>/dev/null; more=1 ;; esac
  done
done
`;

/**
 * $1 pid. Stops the process and, pass after pass, every process whose parent is already stopped (so none
 * can fork away), then kills them all: a command run through sh leaves no orphan holding the agent's
 * output pipes open (the agent reports a process as exited only once those are closed).
 */
export const KILL_TREE = `
all=" $1 "
kill -STOP "$1" 2>/dev/null${STOP_DESCENDANTS}kill -KILL $all 2>/dev/null
exit 0
`;

/** $1 directory to enter, then the command: runs it there, or exits 125 saying why it could not enter. */
export const IN_DIRECTORY = 'cd "$1" || exit 125; shift; exec "$@"';
