# zsh -f zsh-capture.zsh source|fpath SCRIPT LINE
#
# Types LINE and a TAB into an interactive zsh (in a pseudo-terminal, zpty) that loaded compinit and
# SCRIPT (sourced, or found as _grove in $fpath), and prints each match zsh's completion system offers
# as MATCH|SUFFIX| (SUFFIX: what is inserted after it, a space unless the completer said otherwise).
# compadd is wrapped only to read the matches back: each call still goes to the builtin, which filters
# the words against what was typed (-A hands back what it kept), so what is printed is what zsh offers.
zmodload zsh/zpty
mode=$1 script=$2 line=$3
init=$(mktemp)
{
  print -r -- 'PROMPT= RPROMPT='
  [[ $mode == fpath ]] && print -r -- "fpath=(${(q)script:h} \$fpath)"
  print -r -- 'autoload -Uz compinit && compinit -u -D'
  [[ $mode == source ]] && print -r -- "source ${(q)script}"
  cat <<'INIT'
bindkey '^I' complete-word
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
__capture_mark() { print -r -- $'\x1eMARK' }
compprefuncs=(__capture_mark)
comppostfuncs=(__capture_mark exit)
compadd() {
  # Calls that ask for the matches themselves are not completions being offered.
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  local -A __o
  zparseopts -E -A __o S: P: p: s: i: I:
  local h
  for h in $__hits; do print -r -- "MATCH:${__o[-P]}${h}|${__o[-S]- }|"; done
}
print -r -- $'\x1eREADY'
INIT
} > $init
zpty z zsh -f -i
zpty -w z "source $init"
local out
while zpty -r z out; do [[ $out == *$'\x1eREADY'* ]] && break; done
zpty -w -n z "$line"$'\t'
local marks=0
while zpty -r z out; do
  if [[ $out == *$'\x1eMARK'* ]]; then (( marks++ )) && break; continue; fi
  (( marks )) && [[ $out == *MATCH:* ]] && print -r -- "${${out#*MATCH:}%%$'\r'*}"
done
zpty -d z
rm -f $init
