// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs the Reflect metadata polyfill.
import 'reflect-metadata';
import { X509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const SIGNING = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

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

/** A positive 128-bit serial: unpredictable, as the CA/Browser Forum asks. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return Buffer.from(bytes).toString('hex');
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** A self-signed ECDSA P-256 CA that may sign certificates (and nothing below it may: pathLength 0). */
export async function createCertificateAuthority(options: {
  commonName: string;
  notBefore?: Date;
  notAfter?: Date;
}): Promise<CertificateAndKey> {
  const keys = await generateKeyPair();
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${escapeDn(options.commonName)}`,
    notBefore,
    notAfter: options.notAfter ?? new Date(notBefore.getTime() + 10 * 365 * DAY_MS),
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

/** A leaf certificate for a TLS server or client, signed by `issuer`, with the given subject alternative names. */
export async function issueCertificate(options: {
  issuer: CertificateAndKey;
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  usage: 'server' | 'client';
  notBefore?: Date;
  notAfter?: Date;
}): Promise<CertificateAndKey> {
  const issuerCertificate = new x509.X509Certificate(options.issuer.certificatePem);
  const issuerKey = await importPrivateKey(options.issuer.privateKeyPem);
  const keys = await generateKeyPair();
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const defaultDays = options.usage === 'server' ? 397 : 365;
  const names: x509.JsonGeneralName[] = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      [options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerCertificate, false),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${escapeDn(options.commonName)}`,
    issuer: issuerCertificate.subject,
    notBefore,
    notAfter: options.notAfter ?? new Date(notBefore.getTime() + defaultDays * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: issuerKey,
    extensions,
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await exportPrivateKey(keys.privateKey) };
}

export interface CertificateIdentityInfo {
  uris: string[];
  dnsNames: string[];
  commonName: string | null;
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
}

/** The names and validity of a certificate, read with Node's own X.509 parser. */
export function describeCertificate(certificatePemOrDer: string | Uint8Array): CertificateIdentityInfo {
  const certificate = new X509Certificate(certificatePemOrDer);
  const sans = (certificate.subjectAltName ?? '').split(/,\s*/).filter(Boolean);
  const valuesOf = (type: string) =>
    sans.filter((san) => san.startsWith(`${type}:`)).map((san) => san.slice(type.length + 1).replace(/^"|"$/g, ''));
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(certificate.subject)?.[1] ?? null;
  return {
    uris: valuesOf('URI'),
    dnsNames: valuesOf('DNS'),
    commonName: cn,
    fingerprintSha256: certificate.fingerprint256,
    notBefore: new Date(certificate.validFrom),
    notAfter: new Date(certificate.validTo),
    serialNumber: certificate.serialNumber,
  };
}
