/**
 * Grove's own SSH key pair and known-hosts file, in the data directory. The public key goes into every
 * cloud-init seed; `grove ssh` logs in with the private key.
 */
export interface SshIdentity {
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
  /** The public key line (`ssh-ed25519 AAAA… grove@host`); the pair is made on first use. */
  publicKey(): Promise<string>;
}
