import { invalid } from './errors.js';

/**
 * Pointer input as QEMU's input layer takes it (QMP `input-send-event`): buttons, and absolute axes in
 * 0..32767 whatever the screen size.
 */
export type PointerEvent =
  | { kind: 'button'; button: MouseButton; down: boolean }
  | { kind: 'abs'; axis: 'x' | 'y'; value: number };

export type MouseButton = 'left' | 'middle' | 'right' | 'wheel-up' | 'wheel-down';
export type MouseAction = 'move' | 'click' | 'double-click' | 'down' | 'up';

export interface ScreenSize { width: number; height: number }

/** QEMU's absolute axis range (INPUT_EVENT_ABS_MAX); tablets report these values to the guest as they are. */
export const ABS_MAX = 0x7fff;

const MODIFIERS: Record<string, string> = {
  ctrl: 'ctrl', control: 'ctrl', shift: 'shift', alt: 'alt', altgr: 'alt_r', meta: 'meta_l', super: 'meta_l', win: 'meta_l', cmd: 'meta_l',
};

/** Key names accepted in `keys`, mapped to QEMU key codes (QKeyCode). */
const NAMED: Record<string, string> = {
  enter: 'ret', return: 'ret', tab: 'tab', backspace: 'backspace', escape: 'esc', esc: 'esc', space: 'spc',
  up: 'up', down: 'down', left: 'left', right: 'right', home: 'home', end: 'end', insert: 'insert', delete: 'delete',
  del: 'delete', pageup: 'pgup', pagedown: 'pgdn', print: 'print', sysrq: 'sysrq', pause: 'pause', menu: 'menu',
  capslock: 'caps_lock', numlock: 'num_lock', scrolllock: 'scroll_lock',
  minus: 'minus', equal: 'equal', bracketleft: 'bracket_left', bracketright: 'bracket_right', backslash: 'backslash',
  semicolon: 'semicolon', apostrophe: 'apostrophe', grave: 'grave_accent', comma: 'comma', period: 'dot', dot: 'dot',
  slash: 'slash',
  ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i + 1}`, `f${i + 1}`])),
};

/** The characters of a US keyboard: the key that types each, and whether shift is held. */
const US_UNSHIFTED = "abcdefghijklmnopqrstuvwxyz0123456789-=[]\\;',./` ";
const US_SHIFTED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ)!@#$%^&*(_+{}|:"<>?~';
const PUNCT_KEYS: Record<string, string> = {
  '-': 'minus', '=': 'equal', '[': 'bracket_left', ']': 'bracket_right', '\\': 'backslash', ';': 'semicolon',
  "'": 'apostrophe', ',': 'comma', '.': 'dot', '/': 'slash', '`': 'grave_accent', ' ': 'spc',
};
const SHIFTED_BASE: Record<string, string> = {
  ')': '0', '!': '1', '@': '2', '#': '3', '$': '4', '%': '5', '^': '6', '&': '7', '*': '8', '(': '9',
  _: '-', '+': '=', '{': '[', '}': ']', '|': '\\', ':': ';', '"': "'", '<': ',', '>': '.', '?': '/', '~': '`',
};

export const SCREEN_KEY_NAMES: readonly string[] = [
  ...Object.keys(NAMED), 'a … z', '0 … 9', ...Object.keys(PUNCT_KEYS).filter((k) => k !== ' '),
];
const MODIFIER_NAMES = Object.keys(MODIFIERS);

function baseKey(name: string): string | undefined {
  if (/^[a-z0-9]$/.test(name)) return name;
  return NAMED[name] ?? PUNCT_KEYS[name];
}

/**
 * A chord: QEMU key codes pressed in order and released in reverse. `ctrl-alt-delete`, `shift-tab`,
 * `ctrl-c`, `super` are chords of modifiers and one key.
 */
export type KeyChord = string[];

export function comboChord(combo: string): KeyChord {
  const name = combo.toLowerCase();
  // A trailing '-' is the minus key itself ("ctrl--"), not a separator.
  const parts = name.endsWith('--') ? [...name.slice(0, -2).split('-').filter(Boolean), '-'] : name === '-' ? ['-'] : name.split('-');
  const last = parts[parts.length - 1]!;
  const unknown = (what: string): never => {
    throw invalid(`unknown key '${what}' in '${combo}' (keys: ${SCREEN_KEY_NAMES.join(', ')}; modifiers, joined with '-': ${MODIFIER_NAMES.join(', ')})`, { field: 'keys' });
  };
  const mods = parts.slice(0, -1).map((m) => MODIFIERS[m] ?? unknown(m));
  return [...mods, baseKey(last) ?? MODIFIERS[last] ?? unknown(last)];
}

/**
 * Text typed on a US keyboard, one chord per character: the key, with shift held where the character
 * needs it. Newlines press enter ("\r\n" once). Characters a US keyboard cannot type (accents, other
 * scripts) are refused, all named at once.
 */
export function textChords(text: string): KeyChord[] {
  const bad = new Set<string>();
  const out: KeyChord[] = [];
  for (const ch of text.replace(/\r\n/g, '\n')) {
    if (ch === '\n' || ch === '\r') out.push(['ret']);
    else if (ch === '\t') out.push(['tab']);
    else if (US_UNSHIFTED.includes(ch)) out.push([baseKey(ch)!]);
    else if (US_SHIFTED.includes(ch)) out.push(['shift', baseKey(/^[A-Z]$/.test(ch) ? ch.toLowerCase() : SHIFTED_BASE[ch]!)!]);
    else bad.add(ch);
  }
  if (bad.size > 0) {
    const list = [...bad].map((c) => JSON.stringify(c)).join(', ');
    throw invalid(`text can only hold what a US keyboard types (ASCII letters, digits, punctuation, space, tab, newline); not: ${list}`, { field: 'text' });
  }
  return out;
}

/** Screen pixels to QEMU's absolute range, as QEMU's own VNC server scales them (0 … width-1 → 0 … 32767). */
export function toAbsolute(pos: number, extent: number, axis: 'x' | 'y'): number {
  if (!Number.isInteger(pos) || pos < 0 || pos >= extent) {
    throw invalid(`${axis} = ${pos} is outside the screen (0 … ${extent - 1}; the screen is ${axis === 'x' ? 'wide' : 'high'} ${extent} pixels now)`, { field: `mouse.${axis}` });
  }
  return extent <= 1 ? 0 : Math.floor((pos * ABS_MAX) / (extent - 1));
}

export function moveEvents(x: number, y: number, size: ScreenSize): PointerEvent[] {
  return [{ kind: 'abs', axis: 'x', value: toAbsolute(x, size.width, 'x') }, { kind: 'abs', axis: 'y', value: toAbsolute(y, size.height, 'y') }];
}

/** The button part of a mouse action, after the pointer was moved (one event batch per step). */
export function buttonSteps(button: MouseButton, action: MouseAction): PointerEvent[][] {
  const press = (down: boolean): PointerEvent[] => [{ kind: 'button', button, down }];
  switch (action) {
    case 'move': return [];
    case 'down': return [press(true)];
    case 'up': return [press(false)];
    case 'click': return [press(true), press(false)];
    case 'double-click': return [press(true), press(false), press(true), press(false)];
  }
}

/** Wheel notches: each is a press and release of the wheel "button", as QEMU's own VNC server sends them. */
export function scrollSteps(direction: 'up' | 'down', clicks: number): PointerEvent[][] {
  const button: MouseButton = direction === 'up' ? 'wheel-up' : 'wheel-down';
  return Array.from({ length: clicks }, () => [{ kind: 'button', button, down: true }, { kind: 'button', button, down: false }] as PointerEvent[]);
}
