// The package's public API. Test seams (encryptMessageWithSalt) are exported from their files for the specs
// only and deliberately left out here.
export * from './errors';
export * from './random';
export * from './constant-time';
export * from './aes-gcm';
export * from './key-material';
export {
  CIPHERTEXT_PREFIXES,
  type CiphertextPurpose,
  type CiphertextHeader,
  type EncryptionContext,
  type ParsedCiphertext,
  type VersionKey,
  importVersionKey,
  canonicalContext,
  ciphertextKeyName,
  decryptMessage,
  encryptMessage,
  parseCiphertext,
} from './ciphertext-format';
export {
  type CertificateAndKey,
  type CertificateIdentityInfo,
  CertificateRequestError,
  type LeafCertificateOptions,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  issueCertificateForRequest,
  parseSubjectAltName,
} from './pki/certificates';
export {
  type DecodedShare,
  type MasterKeySplit,
  SHARE_PREFIX,
  ShareFormatError,
  combineShares,
  decodeShare,
  keyCheckValue,
  matchesKeyCheckValue,
  splitMasterKey,
  splitSecret,
} from './shamir';
export * from './ed25519';
export * from './audit';
