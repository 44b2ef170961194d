import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ABS_MAX, buttonSteps, comboChord, moveEvents, scrollSteps, textChords, toAbsolute } from './screen-input.js';

test('key combinations become chords of QEMU key codes', () => {
  assert.deepEqual(comboChord('ctrl-alt-delete'), ['ctrl', 'alt', 'delete']);
  assert.deepEqual(comboChord('enter'), ['ret']);
  assert.deepEqual(comboChord('Shift-Tab'), ['shift', 'tab']);
  assert.deepEqual(comboChord('ctrl-c'), ['ctrl', 'c']);
  assert.deepEqual(comboChord('super'), ['meta_l']);
  assert.deepEqual(comboChord('ctrl--'), ['ctrl', 'minus']);
  assert.deepEqual(comboChord('-'), ['minus']);
  assert.deepEqual(comboChord('/'), ['slash']);
  assert.deepEqual(comboChord('f12'), ['f12']);
});

test('unknown keys and modifiers are refused with the list of valid names', () => {
  assert.throws(() => comboChord('ctrl-foo'), (e: Error) => /unknown key 'foo' in 'ctrl-foo'.*enter.*pagedown.*modifiers.*ctrl, control, shift/.test(e.message));
  assert.throws(() => comboChord('hyper-a'), /unknown key 'hyper'/);
  assert.throws(() => comboChord('é'), /unknown key 'é'/);
});

test('text is typed on a US layout: shift where the character needs it, newline as enter', () => {
  assert.deepEqual(textChords('aZ1!\n'), [['a'], ['shift', 'z'], ['1'], ['shift', '1'], ['ret']]);
  assert.deepEqual(textChords('a\r\nb'), [['a'], ['ret'], ['b']]);
  assert.deepEqual(textChords('~`_-+= \t'), [['shift', 'grave_accent'], ['grave_accent'], ['shift', 'minus'], ['minus'], ['shift', 'equal'], ['equal'], ['spc'], ['tab']]);
  assert.deepEqual(textChords('{}|:"<>?'), [
    ['shift', 'bracket_left'], ['shift', 'bracket_right'], ['shift', 'backslash'], ['shift', 'semicolon'],
    ['shift', 'apostrophe'], ['shift', 'comma'], ['shift', 'dot'], ['shift', 'slash'],
  ]);
  assert.throws(() => textChords('naïve € ï'), /not: "ï", "€"/);
});

test('screen pixels scale to the absolute range as QEMU\'s VNC server scales them', () => {
  assert.equal(toAbsolute(0, 720, 'x'), 0);
  assert.equal(toAbsolute(719, 720, 'x'), ABS_MAX);
  assert.equal(toAbsolute(100, 720, 'x'), Math.floor((100 * 32767) / 719));
  assert.throws(() => toAbsolute(720, 720, 'x'), /x = 720 is outside the screen \(0 … 719/);
  assert.deepEqual(moveEvents(0, 399, { width: 720, height: 400 }), [{ kind: 'abs', axis: 'x', value: 0 }, { kind: 'abs', axis: 'y', value: ABS_MAX }]);
});

test('button actions and wheel notches are separate steps of presses and releases', () => {
  assert.deepEqual(buttonSteps('left', 'move'), []);
  assert.deepEqual(buttonSteps('right', 'click'), [[{ kind: 'button', button: 'right', down: true }], [{ kind: 'button', button: 'right', down: false }]]);
  assert.equal(buttonSteps('left', 'double-click').length, 4);
  assert.deepEqual(buttonSteps('left', 'down'), [[{ kind: 'button', button: 'left', down: true }]]);
  assert.deepEqual(scrollSteps('up', 2), [
    [{ kind: 'button', button: 'wheel-up', down: true }, { kind: 'button', button: 'wheel-up', down: false }],
    [{ kind: 'button', button: 'wheel-up', down: true }, { kind: 'button', button: 'wheel-up', down: false }],
  ]);
});
