import { generateKeyPairSync, randomBytes } from 'node:crypto';

export interface OpenSshKeyPair {
  /** The private key file's text (`-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted). */
  privateKey: string;
  /** The public key line: `ssh-ed25519 <base64> <comment>`. */
  publicKey: string;
}

const KEY_TYPE = 'ssh-ed25519';

/**
 * A new Ed25519 key pair in OpenSSH's own formats (openssh-key-v1, PROTOCOL.key in OpenSSH's sources):
 * byte for byte the layout `ssh-keygen -t ed25519 -N ''` writes, so every OpenSSH client reads it, without
 * the daemon needing ssh-keygen on its host.
 */
export function ed25519KeyPair(comment: string): OpenSshKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  // The two equal check words let a reader tell a wrong passphrase from a damaged file.
  const check = randomBytes(4);
  const secret = Buffer.concat([check, check, publicBlob, sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3, … to the cipher's block size, which is 8 for "none".
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  const file = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'), sshString('none'), sshString('none'), sshString(''), u32(1),
    sshString(publicBlob), sshString(Buffer.concat([secret, padding])),
  ]);
  const body = file.toString('base64').match(/.{1,70}/g)!.join('\n');
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${KEY_TYPE} ${publicBlob.toString('base64')} ${comment}`,
  };
}

/** The SSH wire format's `string`: a 32-bit big-endian length, then the bytes. */
function sshString(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([u32(b.length), b]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
