import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeQgaServer } from '../../../test/fakes/fake-qga-server.js';
import { GuestAgentUnavailableError, GuestCommandError } from '../../ports/guest-agent.js';
import { QgaAgentConnector, errnoOf } from './qga-agent.js';

test('errno names come from the strerror text the agent appends', () => {
  assert.equal(errnoOf("failed to open file '/x' (mode: 'r'): No such file or directory"), 'ENOENT');
  assert.equal(errnoOf('Guest agent command failed, error was \'Failed to execute child process “/x” (Permission denied)\''), 'EACCES');
  assert.equal(errnoOf('something else'), null);
});

test('the adapter speaks the port: bytes as Buffers, errors as the port\'s two kinds', async (t) => {
  const server = await FakeQgaServer.start();
  t.after(() => server.close());
  server.handle('guest-exec-status', { return: { exited: true, exitcode: 0, 'out-data': Buffer.from([0, 255]).toString('base64'), 'out-truncated': true } });
  server.handle('guest-file-read', { return: { count: 3, 'buf-b64': Buffer.from('abc').toString('base64'), eof: true } });
  server.handle('guest-file-write', (cmd) => ({ return: { count: Buffer.from(String(cmd.arguments!['buf-b64']), 'base64').length, eof: false } }));
  server.handle('guest-file-open', { error: { class: 'GenericError', desc: "failed to open file '/x' (mode: 'r'): No such file or directory" } });
  server.handle('guest-get-osinfo', { return: { 'pretty-name': 'Debian GNU/Linux 12 (bookworm)', id: 'debian', 'version-id': '12' } });
  const agent = new QgaAgentConnector({ syncTimeoutMs: 200 }).open(server.socketPath);
  t.after(() => agent.close());

  const s = await agent.execStatus(5);
  assert.deepEqual(s.stdout, Buffer.from([0, 255]));
  assert.equal(s.stdoutTruncated, true);
  assert.deepEqual(s.stderr, Buffer.alloc(0));
  assert.equal(s.signal, null);
  assert.deepEqual(await agent.fileRead(1, 10), { data: Buffer.from('abc'), eof: true });
  assert.equal(await agent.fileWrite(1, Buffer.from('hello')), 5);
  const os = await agent.osInfo();
  assert.equal(os.prettyName, 'Debian GNU/Linux 12 (bookworm)');
  assert.equal(os.kernelRelease, null);
  await assert.rejects(agent.fileOpen('/x', 'r'), (e: unknown) => e instanceof GuestCommandError && e.errno === 'ENOENT' && e.command === 'guest-file-open');

  server.stopAgent();
  await assert.rejects(agent.ping(), GuestAgentUnavailableError);
});
