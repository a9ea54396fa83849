import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { sha256 } from './constant-time';

/** An Ed25519 key pair: the private key as PKCS#8 DER (seal it before storing), the public key as SPKI PEM. */
export interface Ed25519KeyPair {
  privateKeyDer: Buffer;
  publicKeyPem: string;
}

export function generateEd25519KeyPair(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyDer: privateKey.export({ type: 'pkcs8', format: 'der' }),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The SPKI PEM of the public half of a PKCS#8 DER Ed25519 private key. */
export function ed25519PublicKeyOf(privateKeyDer: Uint8Array): string {
  const privateKey = createPrivateKey({ key: Buffer.from(privateKeyDer), format: 'der', type: 'pkcs8' });
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}

export function ed25519Sign(privateKeyDer: Uint8Array, message: Uint8Array): Buffer {
  const privateKey = createPrivateKey({ key: Buffer.from(privateKeyDer), format: 'der', type: 'pkcs8' });
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 private key');
  return sign(null, message, privateKey);
}

/** False for a wrong signature, a malformed key or a key of another type: never throws on bad input. */
export function ed25519Verify(publicKeyPem: string, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const publicKey = createPublicKey(publicKeyPem);
    if (publicKey.asymmetricKeyType !== 'ed25519') return false;
    return verify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

/** A short, stable name for a public key: the first 16 bytes of SHA-256 over its SPKI DER, in hex. */
export function publicKeyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return sha256(der).subarray(0, 16).toString('hex');
}
