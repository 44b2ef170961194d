import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { SshIdentity } from '../ports/ssh-identity.js';
import { ed25519KeyPair } from '../util/openssh-key.js';

/**
 * `<data>/ssh/id_ed25519` (0600) and `.pub` (0644), made the first time a key is needed; `known_hosts`
 * beside them. The pair is made in-process (util/openssh-key.ts), so a host without OpenSSH's tools can
 * still create cloud-init VMs; only `grove ssh` needs the ssh client.
 */
export class FileSshIdentity implements SshIdentity {
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
  private making: Promise<string> | null = null;

  constructor(private readonly dir: string) {
    this.privateKeyPath = join(dir, 'id_ed25519');
    this.knownHostsPath = join(dir, 'known_hosts');
  }

  async publicKey(): Promise<string> {
    // One maker at a time: two creates at once must not both write the pair.
    this.making ??= this.readOrMake().finally(() => { this.making = null; });
    return this.making;
  }

  private async readOrMake(): Promise<string> {
    const pub = `${this.privateKeyPath}.pub`;
    const existing = await readFile(pub, 'utf8').catch(() => null);
    if (existing !== null && existing.trim() !== '') return existing.trim();
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const pair = ed25519KeyPair(`grove@${hostname()}`);
    // The public half is written last and renamed into place: its presence says the pair is whole, so a
    // crash in between leaves a private key that is simply made again.
    await rm(this.privateKeyPath, { force: true });
    await writeFile(this.privateKeyPath, pair.privateKey, { mode: 0o600, flag: 'wx' });
    const partial = `${pub}.partial`;
    await writeFile(partial, `${pair.publicKey}\n`, { mode: 0o644 });
    // The umask may have taken bits from the mode asked for; the public key is meant to be readable.
    await chmod(partial, 0o644);
    await rename(partial, pub);
    return pair.publicKey;
  }
}
