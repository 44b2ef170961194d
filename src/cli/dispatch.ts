import type { Command } from './command.js';
import { suggest } from './suggest.js';

/**
 * Finding the command `argv` names in the command table: `verb`, `group verb`, their aliases, and a group
 * that is also a command of its own (`console VM` beside `console clear VM`). Unknown words get a "did
 * you mean" from the same table.
 */
export type Lookup = { cmd: Command; rest: string[] } | { error: string };

/** The first word of every command and every top-level alias (what completion offers first). */
export function topWords(table: readonly Command[], withHidden = false): string[] {
  const words = new Set<string>();
  for (const c of table) {
    if (c.hidden && !withHidden) continue;
    const [first, member] = c.name.split(' ');
    words.add(first!);
    if (member === undefined) for (const a of c.aliases ?? []) words.add(a);
  }
  return [...words];
}

/** Members of a group with their aliases: `webhook` → ls, list, add, rm, ... */
export function memberWords(table: readonly Command[], group: string, withHidden = false): string[] {
  return table.filter((c) => c.name.startsWith(`${group} `) && (withHidden || !c.hidden))
    .flatMap((c) => [c.name.split(' ')[1]!, ...(c.aliases ?? [])]);
}

function single(table: readonly Command[], word: string): Command | undefined {
  return table.find((c) => !c.name.includes(' ') && (c.name === word || (c.aliases ?? []).includes(word)));
}

export function isGroup(table: readonly Command[], word: string): boolean {
  return table.some((c) => c.name.startsWith(`${word} `));
}

export function member(table: readonly Command[], group: string, word: string): Command | undefined {
  return table.find((c) => c.name.startsWith(`${group} `) && (c.name === `${group} ${word}` || (c.aliases ?? []).includes(word)));
}

export function lookup(table: readonly Command[], argv: string[]): Lookup {
  const [name, ...rest] = argv;
  if (name === undefined) return { error: 'missing command; see grove --help' };
  if (isGroup(table, name)) {
    const sub = rest[0];
    const m = sub !== undefined ? member(table, name, sub) : undefined;
    if (m) return { cmd: m, rest: rest.slice(1) };
    const own = single(table, name);
    // A group that is also a command of its own takes anything that is not one of its members.
    if (own && (sub === undefined || sub.startsWith('-') || !looksLikeMember(table, name, sub))) return { cmd: own, rest };
    const members = memberWords(table, name);
    if (sub === undefined) return { error: `${name}: missing sub-command; one of: ${members.join(', ')}` };
    return { error: `${name}: unknown sub-command '${sub}'${suggest(sub, members)}; one of: ${members.join(', ')}` };
  }
  const c = single(table, name);
  if (c) return { cmd: c, rest };
  return { error: `unknown command '${name}'${suggest(name, topWords(table))}; see grove --help` };
}

/** A word close to a member's name is taken as a mistyped member, not as the own command's argument. */
function looksLikeMember(table: readonly Command[], group: string, word: string): boolean {
  return suggest(word, memberWords(table, group)) !== '';
}
