import type { Command } from './command.js';

/**
 * The command table main.ts builds, for the commands that describe the others (completion). Set once at
 * start-up; a command registers by being in main.ts's COMMANDS list, nothing else.
 */
let table: readonly Command[] = [];

export function setCommandTable(commands: readonly Command[]): void {
  table = commands;
}

export function commandTable(): readonly Command[] {
  return table;
}
