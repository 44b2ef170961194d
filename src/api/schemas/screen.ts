import { Type } from '@sinclair/typebox';

const Pixel = (axis: 'x' | 'y') => Type.Integer({ minimum: 0, maximum: 16383, description: `${axis === 'x' ? 'Column' : 'Row'} in screen pixels, from the ${axis === 'x' ? 'left' : 'top'} (0-based; the screen's current size is in the answer and in screenshots)` });

export const KeysInput = Type.Object({
  keys: Type.Array(Type.String({ minLength: 1, maxLength: 48 }), {
    minItems: 1, maxItems: 256,
    description: 'Key presses in order. A key is a name (enter, tab, backspace, escape, space, up, down, left, right, home, end, insert, delete, pageup, pagedown, f1–f12, print, sysrq, pause, menu, capslock, …), a letter, a digit or a punctuation character, optionally after modifiers joined with `-` (ctrl, shift, alt, altgr, super/meta/win): `ctrl-alt-delete`, `ctrl-c`, `shift-tab`, `alt-f4`. An unknown name is a 400 listing the valid ones.',
    examples: [['ctrl-alt-delete', 'enter']],
  }),
}, { additionalProperties: false });

export const TextInput = Type.Object({
  text: Type.String({ minLength: 1, maxLength: 4096, description: 'Typed on a US keyboard layout with the right key codes and shift states; "\\n" presses enter. Characters a US keyboard cannot type are refused (400).' }),
}, { additionalProperties: false });

export const MouseInput = Type.Object({
  mouse: Type.Object({
    x: Pixel('x'),
    y: Pixel('y'),
    button: Type.Optional(Type.Union([Type.Literal('left'), Type.Literal('middle'), Type.Literal('right')], { default: 'left' })),
    action: Type.Optional(Type.Union([Type.Literal('click'), Type.Literal('double-click'), Type.Literal('move'), Type.Literal('down'), Type.Literal('up')], {
      default: 'click', description: '`move` only moves the pointer; `down`/`up` press or release the button there (drag: down, move, up)',
    })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

export const ScrollInput = Type.Object({
  scroll: Type.Object({
    direction: Type.Union([Type.Literal('up'), Type.Literal('down')]),
    clicks: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 1, description: 'Wheel notches' })),
    x: Type.Optional(Pixel('x')),
    y: Type.Optional(Pixel('y')),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

export const InputBody = Type.Union([KeysInput, TextInput, MouseInput, ScrollInput], {
  description: 'Exactly one of `keys`, `text`, `mouse`, `scroll`.',
});

export const InputResult = Type.Object({
  events: Type.Integer({ description: 'Key presses (one per key or character) or pointer events delivered' }),
  screen: Type.Optional(Type.Object({ width: Type.Integer(), height: Type.Integer() }, { description: 'The screen size a pointer position was scaled with' })),
});
