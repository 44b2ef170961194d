import { mkdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DomainError } from '../domain/errors.js';
import type { SshIdentity } from '../ports/ssh-identity.js';
import { errorMessage } from '../util/errors.js';
import { run } from '../util/run.js';

/**
 * `<data>/ssh/id_ed25519` (0600) and `.pub` (0644), made by OpenSSH's ssh-keygen the first time a key is
 * needed, so the key is in the one format every OpenSSH reads; `known_hosts` beside them.
 */
export class SshKeygenIdentity implements SshIdentity {
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
  private making: Promise<string> | null = null;

  constructor(private readonly dir: string, private readonly keygen = 'ssh-keygen') {
    this.privateKeyPath = join(dir, 'id_ed25519');
    this.knownHostsPath = join(dir, 'known_hosts');
  }

  async publicKey(): Promise<string> {
    // One maker at a time: two creates at once must not both run ssh-keygen over the same file.
    this.making ??= this.readOrMake().finally(() => { this.making = null; });
    return this.making;
  }

  private async readOrMake(): Promise<string> {
    const pub = `${this.privateKeyPath}.pub`;
    const existing = await readFile(pub, 'utf8').catch(() => null);
    if (existing !== null && existing.trim() !== '') return existing.trim();
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // A private key without its public half (a crash between the two writes) is made again.
    await Promise.all([rm(this.privateKeyPath, { force: true }), rm(pub, { force: true })]);
    let r;
    try {
      r = await run(this.keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', `grove@${hostname()}`, '-f', this.privateKeyPath], 30_000);
    } catch (e) {
      throw new DomainError('INTERNAL', `cannot make Grove's SSH key: ${this.keygen} did not run (${errorMessage(e)}); install OpenSSH's client (Debian: openssh-client)`);
    }
    if (r.code !== 0) throw new DomainError('INTERNAL', `cannot make Grove's SSH key: ${this.keygen} failed: ${r.stderr.trim()}`);
    return (await readFile(pub, 'utf8')).trim();
  }
}
