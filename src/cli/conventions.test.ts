import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, argWords, parseCommandArgs, vmArgIndex, type Command } from './command.js';
import { lookup } from './dispatch.js';
import { fitTable, parseFormat, render, type Column } from './format.js';
import { closest, suggest } from './suggest.js';
import { plainHttpRefusal, splitRemote } from './connection.js';
import { candidates, completion, completeWords, type CompletionSources } from './commands/completion.js';
import { create, ls, rm, show, start } from './commands/vm.js';
import { consoleAttach } from './commands/console.js';
import { consoleClear, update } from './commands/manage.js';
import { snapshotLs, snapshotRm } from './commands/state.js';
import { webhookLs, webhookTest } from './commands/webhook.js';
import { remoteAdd, remoteDefault, remoteRm } from './commands/remote.js';
import { cp } from './commands/agent.js';
import { images, pull } from './commands/images.js';
import { parseConfigText } from '../config/file.js';

const TABLE: Command[] = [ls, show, create, start, rm, consoleAttach, consoleClear, update, snapshotLs, snapshotRm, webhookLs, webhookTest,
  remoteAdd, remoteRm, remoteDefault, cp, images, pull, completion, completeWords];

function found(argv: string[]): { name: string; rest: string[] } {
  const r = lookup(TABLE, argv);
  if ('error' in r) throw new Error(r.error);
  return { name: r.cmd.name, rest: r.rest };
}

test('dispatch: names, aliases, groups and a group that is also a command', () => {
  assert.deepEqual(found(['list']), { name: 'ls', rest: [] });
  assert.deepEqual(found(['delete', 'vm1']), { name: 'rm', rest: ['vm1'] });
  assert.deepEqual(found(['remove', 'vm1']), { name: 'rm', rest: ['vm1'] });
  assert.deepEqual(found(['snapshot', 'list', 'vm1']), { name: 'snapshot ls', rest: ['vm1'] });
  assert.deepEqual(found(['snapshot', 'delete', 'vm1', 's1']), { name: 'snapshot rm', rest: ['vm1', 's1'] });
  assert.deepEqual(found(['console', 'vm1']), { name: 'console', rest: ['vm1'] });
  assert.deepEqual(found(['console', 'clear', 'vm1']), { name: 'console clear', rest: ['vm1'] });
  assert.deepEqual(found(['set', 'vm1', '--cpu', '2']), { name: 'update', rest: ['vm1', '--cpu', '2'] });
});

test('did you mean: unknown commands, sub-commands and flags', () => {
  const r = lookup(TABLE, ['stat', 'x']);
  assert.ok('error' in r && /did you mean 'start'\?/.test(r.error), JSON.stringify(r));
  const sub = lookup(TABLE, ['snapshot', 'rn']);
  assert.ok('error' in sub && /did you mean 'rm'\?/.test(sub.error), JSON.stringify(sub));
  const far = lookup(TABLE, ['zzzzzz']);
  assert.ok('error' in far && !far.error.includes('did you mean'));
  assert.throws(() => parseCommandArgs(start, ['vm', '--wait-fro', 'x']), (e: unknown) => e instanceof UsageError && /unknown flag '--wait-fro'; did you mean '--wait-for'\?/.test(e.message));
  assert.deepEqual(closest('lst', ['ls', 'list', 'rm']), ['ls', 'list']);
  assert.equal(suggest('qqq', ['ls']), '');
});

test('synopsis words: where the VM is, for REMOTE:VM and completion', () => {
  assert.deepEqual(argWords(start), ['VM']);
  assert.equal(vmArgIndex(start), 0);
  assert.equal(vmArgIndex(create), 0);
  assert.equal(vmArgIndex(cp), null);
  assert.equal(vmArgIndex(ls), null);
  assert.deepEqual(argWords(snapshotRm), ['VM', 'SNAPSHOT']);
});

interface Row { name: string; note: string }
const COLS: Column<Row>[] = [
  { name: 'name', value: (r) => r.name },
  { name: 'note', value: (r) => r.note },
  { name: 'len', value: (r) => String(r.note.length), extra: true },
];
const ROWS: Row[] = [{ name: 'alpha', note: 'has, a comma' }, { name: 'beta', note: 'says "hi"' }];

test('formats: table, json, yaml, csv, and --columns', () => {
  assert.equal(render(ROWS, COLS, { format: 'table', columns: null, width: null }), 'NAME   NOTE\nalpha  has, a comma\nbeta   says "hi"\n');
  assert.deepEqual(JSON.parse(render(ROWS, COLS, { format: 'json', columns: null, width: null })), ROWS);
  assert.deepEqual(JSON.parse(render(ROWS, COLS, { format: 'json', columns: ['len', 'name'], width: null })), [{ len: '12', name: 'alpha' }, { len: '9', name: 'beta' }]);
  assert.equal(render(ROWS, COLS, { format: 'csv', columns: null, width: null }), 'name,note\r\nalpha,"has, a comma"\r\nbeta,"says ""hi"""\r\n');
  assert.equal(render(ROWS, COLS, { format: 'yaml', columns: ['name'], width: null }), '- name: alpha\n- name: beta\n');
  assert.throws(() => render(ROWS, COLS, { format: 'table', columns: ['nmae'], width: null }), /unknown column 'nmae'; did you mean 'name'\?/);
  assert.equal(parseFormat(undefined, false), 'table');
  assert.equal(parseFormat(undefined, true), 'json');
  assert.throws(() => parseFormat('xml', false), UsageError);
  assert.throws(() => parseFormat('csv', true), /contradict/);
});

test('tables fit the terminal: the widest column gives up characters first', () => {
  const t = fitTable(['NAME', 'DESCRIPTION'], [['vm1', 'a very long description that does not fit']], 30);
  for (const line of t.trimEnd().split('\n')) assert.ok(line.length <= 30, `${line} (${line.length})`);
  assert.match(t, /vm1 {3}a very long description…/);
});

test('remotes: REMOTE:VM, the config file\'s remotes, and plain HTTP refused off loopback', () => {
  const cfg = parseConfigText('[cli]\ndefault-remote = "lab"\n\n[remotes.lab]\nurl = "https://lab.example:22100"\n\n[remotes.old]\nurl = "http://10.0.0.2:22100"\ninsecure = true\ntoken-file = "tok"\n', '/etc/grove/config.toml');
  assert.equal(cfg.defaultRemote, 'lab');
  assert.deepEqual(cfg.remotes.get('lab'), { url: 'https://lab.example:22100', tokenFile: null, insecure: false });
  assert.deepEqual(cfg.remotes.get('old'), { url: 'http://10.0.0.2:22100', tokenFile: '/etc/grove/tok', insecure: true });
  assert.deepEqual(splitRemote('lab:web', cfg.remotes), { remote: 'lab', ref: 'web' });
  assert.deepEqual(splitRemote('local:web', cfg.remotes), { remote: 'local', ref: 'web' });
  assert.deepEqual(splitRemote('web', cfg.remotes), { remote: null, ref: 'web' });
  assert.throws(() => splitRemote('lba:web', cfg.remotes), /unknown remote 'lba'.*did you mean 'lab'\?/);
  assert.throws(() => parseConfigText('[remotes.x]\nurl = "https://x"\ntoken = "t"\n', '/c.toml'), /\/c\.toml:3: unknown setting 'token' in \[remotes\.x\]/);
  assert.equal(plainHttpRefusal('http://127.0.0.1:22100', false), null);
  assert.equal(plainHttpRefusal('http://localhost:22100', false), null);
  assert.equal(plainHttpRefusal('https://10.0.0.2:22100', false), null);
  assert.match(plainHttpRefusal('http://10.0.0.2:22100', false) ?? '', /refusing plain HTTP/);
  assert.equal(plainHttpRefusal('http://10.0.0.2:22100', true), null);
});

const SOURCES: CompletionSources = {
  vms: async (remote) => (remote === null ? ['web', 'db'] : remote === 'lab' ? ['gpu'] : []),
  distros: async () => ['debian-12', 'alpine-3.20'],
  webhooks: async () => ['11111111-aaaa'],
  remotes: () => ['lab'],
};

test('completion: commands, sub-commands, flags and their values, VM names and remotes', async () => {
  const c = (...words: string[]) => candidates(TABLE, words, SOURCES);
  assert.deepEqual(await c('sn'), ['snapshot']);
  assert.ok((await c('')).includes('serve'));
  assert.ok(!(await c('')).includes('__complete'), 'hidden commands are not offered');
  assert.deepEqual(await c('snapshot', 'l'), ['ls', 'list']);
  assert.deepEqual(await c('start', ''), ['web', 'db', 'local:', 'lab:']);
  assert.deepEqual(await c('start', 'w'), ['web']);
  assert.deepEqual(await c('start', 'lab:'), ['lab:gpu']);
  assert.deepEqual(await c('start', 'web', ''), []);
  assert.deepEqual(await c('start', '--wait'), ['--wait-for']);
  assert.deepEqual(await c('ls', '--format', ''), ['table', 'json', 'yaml', 'csv']);
  assert.deepEqual(await c('ls', '--remote', ''), ['local', 'lab']);
  assert.deepEqual(await c('pull', 'deb'), ['debian-12']);
  assert.deepEqual(await c('webhook', 'test', ''), ['11111111-aaaa']);
  assert.deepEqual(await c('remote', 'rm', ''), ['lab']);
  assert.deepEqual(await c('completion', ''), ['bash', 'zsh', 'fish']);
  assert.ok((await c('console', '')).includes('clear') && (await c('console', '')).includes('web'), 'a group that is also a command: members and VMs');
  assert.deepEqual(await c('snapshot', 'rm', '--remote', 'lab', ''), ['web', 'db', 'local:', 'lab:']);
});

test('completion: a flag value written --flag=value comes back with its flag', async () => {
  assert.deepEqual(await candidates(TABLE, ['ls', '--format=j'], SOURCES), ['--format=json']);
});

test('completion: update --autostart offers true and false', async () => {
  assert.deepEqual(await candidates(TABLE, ['update', 'web', '--autostart', ''], SOURCES), ['true', 'false']);
});
