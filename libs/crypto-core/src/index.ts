export * from './errors';
export * from './random';
export * from './constant-time';
export * from './aes-gcm';
export * from './key-material';
export {
  CIPHERTEXT_PREFIX,
  type CiphertextHeader,
  type EncryptionContext,
  type ParsedCiphertext,
  type VersionKey,
  importVersionKey,
  canonicalContext,
  decryptMessage,
  encryptMessage,
  parseCiphertext,
} from './ciphertext-format';
export * from './pki/certificates';
