import { spawn } from 'node:child_process';
import { accessSync, constants as fsc } from 'node:fs';
import { constants as osc } from 'node:os';
import type { SshAccess } from '../../client/index.js';
import { EXIT, UsageError, str, type Command } from '../command.js';

/**
 * OpenSSH's arguments for a VM: Grove's key only, its own known_hosts file, the host key remembered
 * under the VM's id (a port reused by another VM is not a "changed host"), new keys accepted once.
 */
export function sshArgv(a: SshAccess, user: string, command: string[]): string[] {
  return [
    '-i', sshPath(a.privateKeyPath),
    '-p', String(a.port),
    '-l', user,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=accept-new',
    '-o', `UserKnownHostsFile="${sshPath(a.knownHostsPath)}"`,
    '-o', `HostKeyAlias=${a.hostKeyAlias}`,
    a.host,
    ...(command.length > 0 ? ['--', ...command] : []),
  ];
}

/** ssh expands `%` tokens in file options, and a `"` would end the quoted value. */
function sshPath(p: string): string {
  if (p.includes('"')) throw new UsageError(`cannot pass the path '${p}' to ssh (it holds a double quote)`);
  return p.replaceAll('%', '%%');
}

export const ssh: Command = {
  name: 'ssh', synopsis: ['ssh VM [--user NAME] [-- COMMAND...]'], summary: 'Log into a VM with OpenSSH and Grove\'s key (or run COMMAND there)',
  help: `Runs the system's ssh through the VM's forward to guest port 22, as the VM's cloud-init user (--user
to log in as another), with Grove's key from the daemon's data dir. Works on the daemon's host only: the
forward listens on its 127.0.0.1. COMMAND's words are joined by ssh and run by the guest's shell, so
quote for that shell ('grove ssh web -- "ls /tmp | wc -l"'). The exit code is ssh's: the command's own
exit code, or 255 when ssh itself failed.`,
  options: { user: { type: 'string' } },
  args: [1, 1],
  tail: true,
  async run(ctx, v, [ref], tail) {
    const vm = await ctx.client.getVm(ref!);
    if (vm.state !== 'running') {
      ctx.err(`grove: VM '${vm.name}' is ${vm.state}; start it first (INVALID_STATE)\n`);
      return EXIT.ERROR;
    }
    const access = await ctx.client.sshAccess(vm.id);
    const user = str(v, 'user') ?? access.user;
    if (user === null) throw new UsageError(`VM '${vm.name}' has no cloud-init user: pass --user`);
    try {
      accessSync(access.privateKeyPath, fsc.R_OK);
    } catch {
      ctx.err(`grove: Grove's SSH key ${access.privateKeyPath} is not readable here: run grove ssh on the daemon's host, as a user who can read its data dir (SSH_KEY_UNREADABLE)\n`);
      return EXIT.ERROR;
    }
    const child = spawn('ssh', sshArgv(access, user, tail), { stdio: 'inherit' });
    // The terminal's ctrl-c reaches ssh too; it decides, and its exit code is ours.
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    try {
      return await new Promise<number>((resolve) => {
        child.once('error', (e: NodeJS.ErrnoException) => {
          ctx.err(`grove: cannot run ssh: ${e.code === 'ENOENT' ? 'not found on PATH; install OpenSSH\'s client (Debian: openssh-client)' : e.message} (SSH_FAILED)\n`);
          resolve(EXIT.ERROR);
        });
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? osc.signals[signal] : 0)));
      });
    } finally {
      process.off('SIGINT', ignore);
    }
  },
};
