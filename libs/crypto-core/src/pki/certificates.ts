// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata polyfill.
import 'reflect-metadata';
import { X509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const SIGNING = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
const CA_VALIDITY_DAYS = 10 * 365;
const SERVER_VALIDITY_DAYS = 397; // the CA/Browser Forum maximum for TLS server certificates
const CLIENT_VALIDITY_DAYS = 365;
// Tolerates clocks a little behind the issuer's, so a certificate is usable the moment it is issued.
const BACKDATE_MS = 60_000;
const MAX_COMMON_NAME_LENGTH = 64; // ub-common-name, RFC 5280

export interface CertificateAndKey {
  certificatePem: string;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(SIGNING, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportPrivateKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(pem)[0], SIGNING, false, ['sign']);
}

/** A positive 128-bit serial: unpredictable, as the CA/Browser Forum asks, and never zero or negative. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return Buffer.from(bytes).toString('hex');
}

/**
 * The subject as a structured name with a UTF8String value: going through a DN string would let commas,
 * quotes or newlines in the name be parsed into other attributes or dropped.
 */
function subjectName(commonName: string): x509.Name {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > MAX_COMMON_NAME_LENGTH) {
    throw new RangeError(`a common name is 1 to ${MAX_COMMON_NAME_LENGTH} characters`);
  }
  return new x509.Name([{ CN: [{ utf8String: commonName }] }]);
}

function validity(notBefore: Date | undefined, notAfter: Date | undefined, defaultDays: number) {
  const from = notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const to = notAfter ?? new Date(from.getTime() + defaultDays * DAY_MS);
  if (!(to.getTime() > from.getTime())) throw new RangeError('notAfter must be later than notBefore');
  return { notBefore: from, notAfter: to };
}

/**
 * A self-signed ECDSA P-256 / SHA-256 certificate authority: basicConstraints CA:TRUE (critical, pathLen 0:
 * it signs leaves, never other CAs), keyUsage keyCertSign | cRLSign (critical), a subject key identifier, a
 * random positive 128-bit serial. Valid from a minute ago (or `notBefore`) for 10 years (or until
 * `notAfter`). Throws RangeError for an empty or over-long (> 64) common name or an empty validity period.
 */
export async function createCertificateAuthority(options: {
  commonName: string;
  notBefore?: Date;
  notAfter?: Date;
}): Promise<CertificateAndKey> {
  const name = subjectName(options.commonName);
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    ...validity(options.notBefore, options.notAfter, CA_VALIDITY_DAYS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await exportPrivateKey(keys.privateKey) };
}

// DNS names and URIs are IA5Strings: 7-bit only. Anything else would be encoded as invalid bytes that each
// verifier reads differently; internationalised names must arrive as A-labels / percent-encoded URIs.
const IA5_NAME = /^[\x21-\x7e]+$/;

function ia5Names(values: string[] | undefined, what: string): string[] {
  for (const value of values ?? []) {
    if (typeof value !== 'string' || !IA5_NAME.test(value)) {
      throw new RangeError(`${what} must be non-empty printable ASCII without spaces`);
    }
  }
  return values ?? [];
}

function subjectAltNames(options: {
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
}): x509.JsonGeneralName[] {
  return [
    ...ia5Names(options.dnsNames, 'DNS names').map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...ia5Names(options.uris, 'URIs').map((value) => ({ type: 'url' as const, value })),
  ];
}

async function leafExtensions(
  usage: 'server' | 'client',
  names: x509.JsonGeneralName[],
  publicKey: CryptoKey | x509.PublicKey,
  issuer: x509.X509Certificate,
): Promise<x509.Extension[]> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      [usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuer, false),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  return extensions;
}

export interface LeafCertificateOptions {
  issuer: CertificateAndKey;
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  usage: 'server' | 'client';
  notBefore?: Date;
  notAfter?: Date;
}

async function signLeaf(options: LeafCertificateOptions, publicKey: CryptoKey | x509.PublicKey): Promise<string> {
  const subject = subjectName(options.commonName);
  const altNames = subjectAltNames(options);
  const issuerCertificate = new x509.X509Certificate(options.issuer.certificatePem);
  const issuerKey = await importPrivateKey(options.issuer.privateKeyPem);
  const defaultDays = options.usage === 'server' ? SERVER_VALIDITY_DAYS : CLIENT_VALIDITY_DAYS;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: issuerCertificate.subjectName,
    ...validity(options.notBefore, options.notAfter, defaultDays),
    signingAlgorithm: SIGNING,
    publicKey,
    signingKey: issuerKey,
    extensions: await leafExtensions(options.usage, altNames, publicKey, issuerCertificate),
  });
  // A mismatched issuer pair would otherwise yield certificates that fail only later, at a TLS handshake.
  if (!(await certificate.verify({ publicKey: issuerCertificate.publicKey, signatureOnly: true }))) {
    throw new Error('the issuer private key does not belong to the issuer certificate');
  }
  return certificate.toString('pem');
}

/**
 * A TLS leaf certificate signed by `issuer`: ECDSA P-256 / SHA-256, CA:FALSE, keyUsage digitalSignature,
 * extKeyUsage serverAuth or clientAuth per `usage`, a subjectAltName with the given DNS names, IP addresses
 * and URIs (none: no extension), subject and authority key identifiers, a random positive 128-bit serial.
 * The issuer field is the CA's subject, byte for byte. Valid from a minute ago (or `notBefore`) for 397 days
 * (server) or 365 days (client), or until `notAfter`. Rejects, with an Error, an issuer key that does not
 * belong to the issuer certificate or an invalid IP address; RangeError for a bad common name, a DNS name
 * or URI that is not printable ASCII, or an empty validity period.
 */
export async function issueCertificate(options: LeafCertificateOptions): Promise<CertificateAndKey> {
  const keys = await generateKeyPair();
  return { certificatePem: await signLeaf(options, keys.publicKey), privateKeyPem: await exportPrivateKey(keys.privateKey) };
}

/** A certificate request that cannot be used: unparseable, or not signed by the key it carries. */
export class CertificateRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateRequestError';
  }
}

/**
 * A leaf certificate for the public key of a PKCS#10 request, whose private key never leaves its owner.
 * The request must be signed by that key (proof of possession). Only its key is used: names, usage and
 * validity come from `options`, never from the request. Throws CertificateRequestError otherwise.
 */
export async function issueCertificateForRequest(options: LeafCertificateOptions & { requestPem: string }): Promise<string> {
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(options.requestPem);
  } catch {
    throw new CertificateRequestError('the certificate request is not a PEM PKCS#10 request');
  }
  let signed = false;
  try {
    signed = await request.verify();
  } catch {
    signed = false;
  }
  if (!signed) throw new CertificateRequestError('the certificate request is not signed by the key it carries');
  return signLeaf(options, request.publicKey);
}

export interface CertificateIdentityInfo {
  /** URI subject alternative names, decoded, in certificate order. */
  uris: string[];
  /** DNS subject alternative names, decoded, in certificate order. */
  dnsNames: string[];
  /** The subject's single commonName; null when there is none or more than one (ambiguous identity). */
  commonName: string | null;
  /** SHA-256 of the DER, upper-case hex pairs joined by colons (Node's format). */
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
  /** Upper-case hex, as Node prints it. */
  serialNumber: string;
}

/**
 * The identity and validity of a PEM or DER certificate, read synchronously with Node's own X.509 parser.
 * It does not verify anything: call it only on a certificate the TLS stack has already verified. Names are
 * returned decoded and exactly as certified: a comma, quote or "URI:" inside one name never splits it into
 * two. Throws whatever Node throws for bytes that are not a certificate, and an Error (never a guess) for
 * subjectAltName text it cannot read unambiguously.
 */
export function describeCertificate(certificatePemOrDer: string | Uint8Array): CertificateIdentityInfo {
  const certificate = new X509Certificate(certificatePemOrDer);
  const names = parseSubjectAltName(certificate.subjectAltName ?? '');
  const valuesOf = (type: string) => names.filter((name) => name.type === type).map((name) => name.value);
  return {
    uris: valuesOf('URI'),
    dnsNames: valuesOf('DNS'),
    commonName: singleCommonName(certificate),
    fingerprintSha256: certificate.fingerprint256,
    notBefore: new Date(certificate.validFrom),
    notAfter: new Date(certificate.validTo),
    serialNumber: certificate.serialNumber,
  };
}

/** The legacy object holds decoded attribute values (the `subject` string is RFC 2253-escaped text instead). */
function singleCommonName(certificate: X509Certificate): string | null {
  type LegacySubject = Record<string, string | string[] | undefined> | undefined;
  const commonName = (certificate.toLegacyObject().subject as unknown as LegacySubject)?.CN;
  return typeof commonName === 'string' ? commonName : null;
}

interface AltName {
  type: string;
  value: string;
}

/**
 * Node lists names as `TYPE:value` joined by ", ". A value containing a comma, quote, backslash, apostrophe
 * or control character is printed as a JSON string literal instead (Node >= 17.3.1, CVE-2021-44532), so
 * splitting on ", " is safe only outside quotes: quoted values are scanned to their closing quote and
 * JSON-decoded.
 */
export function parseSubjectAltName(text: string): AltName[] {
  const names: AltName[] = [];
  let position = 0;
  while (position < text.length) {
    const colon = text.indexOf(':', position);
    if (colon === -1) throw new Error('unexpected subjectAltName format');
    const type = text.slice(position, colon);
    const { value, end } = text[colon + 1] === '"' ? readQuoted(text, colon + 1) : readPlain(text, colon + 1);
    names.push({ type, value });
    position = end;
    if (position < text.length) {
      if (!text.startsWith(', ', position)) throw new Error('unexpected subjectAltName format');
      position += 2;
    }
  }
  return names;
}

// Node quotes any value holding one of these, so meeting one unquoted means the text is not what we expect.
const MUST_BE_QUOTED = /[,"'\\]/;

function readPlain(text: string, start: number): { value: string; end: number } {
  const separator = text.indexOf(', ', start);
  const end = separator === -1 ? text.length : separator;
  const value = text.slice(start, end);
  if (MUST_BE_QUOTED.test(value)) throw new Error('unexpected subjectAltName format');
  return { value, end };
}

function readQuoted(text: string, start: number): { value: string; end: number } {
  for (let index = start + 1; index < text.length; index += 1) {
    if (text[index] === '\\') index += 1;
    else if (text[index] === '"') return { value: JSON.parse(text.slice(start, index + 1)) as string, end: index + 1 };
  }
  throw new Error('unexpected subjectAltName format');
}
