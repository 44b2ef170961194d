import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frameCommand, parseExecuteOutput } from './execute-protocol.js';
import { stripAnsi } from './ansi.js';
import { ConsoleBuffer } from './console-buffer.js';
import { compileWaitPattern } from './wait-pattern.js';

/** What a tty with echo shows for our input: the line echoed (CRLF), then the shell's output. */
function terminal(frameInput: string, output: string): string {
  const typed = frameInput.replace('\x15', '').replace(/\n$/, '');
  return `grove# ${typed}\r\n${output.replace(/\n/g, '\r\n')}grove# `;
}

test('the echoed input line never matches the markers', () => {
  const f = frameCommand('uname -a', 'abc123');
  const echoed = terminal(f.input, '');
  const r = parseExecuteOutput(echoed, f);
  assert.equal(r.done, false);
  assert.equal(r.done === false && r.started, false);
});

test('output and exit code are taken from between the markers, CRLF undone', () => {
  const f = frameCommand('ls /nope', 'tok1');
  const text = terminal(f.input, `${f.begin}\nls: /nope: No such file or directory\n${f.end}1\n`);
  assert.deepEqual(parseExecuteOutput(text, f), { done: true, output: 'ls: /nope: No such file or directory\n', exitCode: 1 });
});

test('output without a trailing newline is still separated from the end marker', () => {
  const f = frameCommand("printf 'a\"b$x'", 't2');
  const text = terminal(f.input, `${f.begin}\na"b${f.end}0\n`);
  assert.deepEqual(parseExecuteOutput(text, f), { done: true, output: 'a"b', exitCode: 0 });
});

test('incomplete output reports started and partial output', () => {
  const f = frameCommand('sleep 5', 't3');
  const r = parseExecuteOutput(`${f.begin}\r\npartial`, f);
  assert.deepEqual(r, { done: false, started: true, output: 'partial' });
});

test('an end marker split across reads is not taken before its status line is complete', () => {
  const f = frameCommand('true', 't4');
  assert.equal(parseExecuteOutput(`${f.begin}\r\n${f.end}`, f).done, false);
  assert.equal(parseExecuteOutput(`${f.begin}\r\n${f.end}4`, f).done, false);
  assert.deepEqual(parseExecuteOutput(`${f.begin}\r\n${f.end}42\r\n`, f), { done: true, output: '', exitCode: 42 });
});

test('a simple command is typed as-is on one line', () => {
  const f = frameCommand('echo "it\'s $HOME"', 'x');
  assert.equal(f.input.split('\n').length, 2);
  assert.ok(f.input.includes(`; echo "it's $HOME"; `));
  assert.ok(f.input.startsWith('\x15'));
});

/** Rebuilds what the chunk lines put into the shell variable. */
function decodeChunks(input: string): string {
  const bytes: number[] = [];
  for (const m of input.matchAll(/printf '((?:\\\d{3})+)'; printf x/g)) {
    for (const o of m[1]!.split('\\').slice(1)) bytes.push(parseInt(o, 8));
  }
  return Buffer.from(bytes).toString('utf8');
}

test('multi-line, commented and trailing-operator commands are rebuilt in a variable and eval-ed', () => {
  for (const cmd of ['echo a\necho b', 'echo hi # note', 'sleep 1 &', 'true;', 'echo \\', 'printf "%s\\n" 100%\n']) {
    const f = frameCommand(cmd, 'y');
    const lines = f.input.split('\n').filter((l) => l !== '');
    assert.match(lines.at(-1)!, /eval "\$__grove_cmd"/, cmd);
    assert.equal(decodeChunks(f.input), cmd, cmd);
  }
});

test('long commands are sent in lines short enough for a line editor', () => {
  const cmd = `echo ${'é'.repeat(1500)}`;
  const f = frameCommand(cmd, 'z');
  const lines = f.input.split('\n');
  assert.ok(lines.length > 10);
  for (const l of lines) assert.ok(l.length < 800, `line of ${l.length}`);
  assert.equal(decodeChunks(f.input), cmd);
});

test('tokens must be alphanumeric', () => {
  assert.throws(() => frameCommand('true', 'a b'));
});

test('stripAnsi removes colour, cursor and OSC sequences', () => {
  assert.equal(stripAnsi('\x1b[1;32mok\x1b[0m \x1b]0;title\x07done\x1b[2K'), 'ok done');
});

test('console buffer serves recent ranges and drops old ones beyond capacity', () => {
  const b = new ConsoleBuffer(10, 100);
  b.append(Buffer.from('hello'), 100);
  b.append(Buffer.from('world'), 105);
  assert.equal(b.read(100, 110)?.toString(), 'helloworld');
  assert.equal(b.read(103, 107)?.toString(), 'lowo');
  b.append(Buffer.from('!!'), 110);
  assert.equal(b.start, 105);
  assert.equal(b.read(100, 112), null);
  assert.equal(b.read(105, 1000)?.toString(), 'world!!');
  assert.equal(b.end, 112);
});

test('wait patterns: literal text is escaped, /re/flags compiled, bad regex rejected', () => {
  assert.equal(compileWaitPattern('a.b').test('axb'), false);
  assert.equal(compileWaitPattern('a.b').test('a.b'), true);
  assert.equal(compileWaitPattern('/ready\\s+\\d+/i').test('READY 42'), true);
  assert.throws(() => compileWaitPattern('/(/'), /invalid regular expression/);
  assert.throws(() => compileWaitPattern(''), /empty/);
  assert.throws(() => compileWaitPattern('/bin/sh'), /not flags.*\/\\\/bin\\\/sh\//);
  assert.equal(compileWaitPattern('/\\/bin\\/sh/').test('exec /bin/sh'), true);
});
