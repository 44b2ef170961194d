import { GroveClient } from '../../client/index.js';
import { EXIT, UsageError, argWords, commandOptions, type Command, type Context } from '../command.js';
import { LOCAL_REMOTE, splitRemote } from '../connection.js';
import { isGroup, lookup, memberWords, topWords } from '../dispatch.js';
import { FORMATS } from '../format.js';
import { commandTable } from '../table.js';

/** What completion asks the daemon (and the config) for; a source that fails gives no words. */
export interface CompletionSources {
  vms(remote: string | null): Promise<string[]>;
  distros(): Promise<string[]>;
  webhooks(): Promise<string[]>;
  remotes(): string[];
}

/** Words the CLI knows that are not in the command table. */
const EXTRA_TOP = ['serve', 'help', '--version', '--help'];
const SHELLS = ['bash', 'zsh', 'fish'];

/**
 * The candidates for the last of `words` (the words after `grove`, the last one being typed, maybe
 * empty), from the command table: commands, sub-commands, flags, flag values, and VM names, distros,
 * webhooks and remotes where the synopsis says VM, DISTRO, ID or NAME.
 */
export async function candidates(table: readonly Command[], words: string[], src: CompletionSources): Promise<string[]> {
  const cur = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const match = (list: string[]) => [...new Set(list)].filter((w) => w.startsWith(cur));
  if (before.length === 0) return match([...topWords(table), ...EXTRA_TOP]);
  if (before[0] === 'help') return before.length === 1 ? match([...topWords(table), 'serve']) : before.length === 2 && isGroup(table, before[1]!) ? match(memberWords(table, before[1]!)) : [];
  const found = lookup(table, before);
  const groupWords = before.length === 1 && isGroup(table, before[0]!) ? memberWords(table, before[0]!) : [];
  if ('error' in found) return match(groupWords);
  const cmd = found.cmd;
  const options = commandOptions(cmd);
  const prev = before[before.length - 1]!;
  if (prev.startsWith('--') && options[prev.slice(2)]?.type === 'string') return flagValues(prev.slice(2), cur, src);
  // `--format=js`: the value, completed as one word with its flag.
  const eq = /^--([^=]+)=(.*)$/s.exec(cur);
  if (eq && options[eq[1]!]?.type === 'string') return (await flagValues(eq[1]!, eq[2]!, src)).map((w) => `--${eq[1]}=${w}`);
  if (cur.startsWith('-')) return match(Object.keys(options).map((o) => `--${o}`));
  // Positionals typed so far (flags and their values left out).
  let index = 0;
  for (let i = 0; i < found.rest.length; i++) {
    const w = found.rest[i]!;
    if (w === '--') return [];
    if (w.startsWith('-')) { if (options[w.replace(/^-+/, '')]?.type === 'string' && !w.includes('=')) i++; continue; }
    index++;
  }
  const kinds = argWords(cmd);
  const kind = kinds[Math.min(index, kinds.length - 1)]?.replace(/\.\.\.$/, '');
  const own = before.length === 1 && index === 0 ? groupWords : [];
  if (kind === undefined || index >= kinds.length && !kinds[kinds.length - 1]!.endsWith('...')) return match(own);
  return [...match(own), ...await valuesOf(kind, cmd, cur, src)];
}

async function valuesOf(kind: string, cmd: Command, cur: string, src: CompletionSources): Promise<string[]> {
  const match = (list: string[]) => [...new Set(list)].filter((w) => w.startsWith(cur));
  switch (kind) {
    case 'VM': return vmWords(cur, src);
    case 'DISTRO': return match(await src.distros());
    case 'SHELL': return match(SHELLS);
    case 'ID': return cmd.name.startsWith('webhook ') ? match(await src.webhooks()) : [];
    case 'NAME': return cmd.name.startsWith('remote ') && cmd.name !== 'remote add' ? match([...(cmd.name === 'remote default' ? [LOCAL_REMOTE] : []), ...src.remotes()]) : [];
    default: return [];
  }
}

/** VM names of the default daemon, and `REMOTE:` prefixes; after `REMOTE:`, that remote's VMs. */
async function vmWords(cur: string, src: CompletionSources): Promise<string[]> {
  const remotes = src.remotes();
  let split: { remote: string | null; ref: string };
  try {
    split = splitRemote(cur, new Map(remotes.map((r) => [r, { url: '', tokenFile: null, insecure: false }])));
  } catch {
    return [];
  }
  if (split.remote !== null) return (await src.vms(split.remote)).filter((n) => n.startsWith(split.ref)).map((n) => `${split.remote}:${n}`);
  return [...await src.vms(null), ...[LOCAL_REMOTE, ...remotes].map((r) => `${r}:`)].filter((w) => w.startsWith(cur));
}

async function flagValues(flag: string, cur: string, src: CompletionSources): Promise<string[]> {
  const match = (list: readonly string[]) => list.filter((w) => w.startsWith(cur));
  switch (flag) {
    case 'format': return match(FORMATS);
    case 'remote': return match([LOCAL_REMOTE, ...src.remotes()]);
    case 'vm': return vmWords(cur, src);
    case 'network': return match(['user', 'none']);
    case 'accel': return match(['auto', 'kvm', 'tcg']);
    case 'autostart': return match(['true', 'false']);
    default: return [];
  }
}

const QUICK_MS = 3000;

/** Sources backed by the daemon(s) of the context, each call bounded to a few seconds. */
function liveSources(ctx: Context): CompletionSources {
  const quick = (c: GroveClient) => new GroveClient({ url: c.url, token: c.token, defaultTimeoutMs: QUICK_MS });
  const safe = async (f: () => Promise<string[]>) => f().catch(() => []);
  return {
    vms: (remote) => safe(async () => (await quick(remote === null ? ctx.client : ctx.clientFor(remote)).listVms()).map((v) => v.name)),
    distros: () => safe(async () => (await quick(ctx.client).listDistros()).map((d) => d.id)),
    webhooks: () => safe(async () => (await quick(ctx.client).listWebhooks()).map((h) => h.id)),
    remotes: () => [...ctx.config.remotes.keys()],
  };
}

export const completeWords: Command = {
  name: '__complete', synopsis: ['__complete -- WORD...'], summary: 'Completion candidates for the words typed (used by the completion scripts)',
  args: [0, 0], tail: true, hidden: true, vmArg: null,
  async run(ctx, _v, _p, tail) {
    const words = tail.length === 0 ? [''] : tail;
    const out = await candidates(commandTable(), words, liveSources(ctx));
    ctx.out(out.length ? `${out.join('\n')}\n` : '');
    return EXIT.OK;
  },
};

export const completion: Command = {
  name: 'completion', synopsis: ['completion SHELL'], summary: 'Shell completion script for bash, zsh or fish',
  help: `Load it in the shell's start-up file:
  bash:  source <(grove completion bash)        (~/.bashrc)
  zsh:   source <(grove completion zsh)         (~/.zshrc, after compinit)
  fish:  grove completion fish | source         (~/.config/fish/config.fish)
The scripts ask 'grove __complete' for the words, so they follow the commands of the grove they call,
and complete VM names (and REMOTE:VM) from the daemon.`,
  args: [1, 1], vmArg: null, local: true,
  async run(ctx, _v, [shell]) {
    const script = SCRIPTS[shell!];
    if (!script) throw new UsageError(`no completion for '${shell}'; one of: ${SHELLS.join(', ')}`);
    ctx.out(script);
    return EXIT.OK;
  },
};

const SCRIPTS: Record<string, string> = {
  bash: `# grove completion for bash: source <(grove completion bash)
_grove_complete() {
  local line="\${COMP_LINE:0:COMP_POINT}" words IFS=$' \\t\\n'
  read -ra words <<< "$line"
  [[ "$line" =~ [[:space:]]$ ]] && words+=("")
  local cur="\${words[\${#words[@]}-1]}"
  IFS=$'\\n'
  local out=($(command grove __complete -- "\${words[@]:1}" 2>/dev/null))
  # bash splits the word at ':' and '=' (COMP_WORDBREAKS): answer only the part after the last of them.
  local wb="\${COMP_WORDBREAKS//[^:=]/}"
  if [[ -n "$wb" && "$cur" == *["$wb"]* ]]; then
    local pre="\${cur%"\${cur##*["$wb"]}"}"
    out=("\${out[@]#"$pre"}")
  fi
  COMPREPLY=("\${out[@]}")
  [[ \${#COMPREPLY[@]} -eq 1 && "\${COMPREPLY[0]}" == *: ]] && compopt -o nospace 2>/dev/null
  return 0
}
complete -o default -F _grove_complete grove
`,
  zsh: `#compdef grove
# grove completion for zsh: source <(grove completion zsh) after compinit, or save it as _grove in a
# folder of $fpath.
_grove() {
  local -a typed out values prefixes
  typed=("\${(@Q)words[2,CURRENT]}")
  out=("\${(@f)$(command grove __complete -- "\${typed[@]}" 2>/dev/null)}")
  out=(\${out:#})
  if (( \${#out} == 0 )); then
    _files
    return
  fi
  # REMOTE: goes on with a VM name: no space after it.
  prefixes=(\${(M)out:#*:})
  values=(\${out:#*:})
  (( \${#values} )) && compadd -a values
  (( \${#prefixes} )) && compadd -S '' -a prefixes
  return 0
}
# Autoloaded from $fpath this file is _grove's first call: complete now; sourced, register it.
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  _grove "$@"
else
  compdef _grove grove
fi
`,
  fish: `# grove completion for fish: grove completion fish | source (or save it as ~/.config/fish/completions/grove.fish)
function __grove_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l out (command grove __complete -- $tokens[2..-1] "$current" 2>/dev/null)
    if test (count $out) -gt 0
        printf '%s\\n' $out
    else
        # Nothing grove knows of (a file argument, say): paths, as fish offers them.
        __fish_complete_path "$current"
    end
end
complete -c grove -f -a '(__grove_complete)'
`,
};
