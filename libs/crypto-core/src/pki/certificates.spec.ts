import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import * as tls from 'node:tls';
// After ./certificates, which loads the Reflect polyfill @peculiar/x509 needs.
import {
  type CertificateAndKey,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  parseSubjectAltName,
} from './certificates';
import * as x509 from '@peculiar/x509';

const DAY_MS = 86_400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SPIFFE_ID = 'spiffe://prod/ns/a/sa/b';

const span = (info: { notBefore: Date; notAfter: Date }) => info.notAfter.getTime() - info.notBefore.getTime();

/** A TLS 1.3 mutual-auth handshake on loopback; resolves to what the server said, or the client's error. */
async function handshake(server: CertificateAndKey, client: CertificateAndKey, caPem: string): Promise<string> {
  const listener = tls.createServer(
    {
      key: server.privateKeyPem,
      cert: server.certificatePem,
      ca: caPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (socket) => socket.end(`hello ${describeCertificate(socket.getPeerX509Certificate()!.raw).uris.join(',')}`),
  );
  listener.on('tlsClientError', () => undefined); // a refused client is the expected outcome of some cases
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise<string>((resolve) => {
      let received = '';
      const { port } = listener.address() as AddressInfo;
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: caPem,
        key: client.privateKeyPem,
        cert: client.certificatePem,
      });
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('error', (error) => resolve(`error: ${error.message}`));
      socket.on('close', () => resolve(received));
    });
  } finally {
    listener.close();
  }
}

async function selfSignedWithSubject(name: x509.JsonNameParams): Promise<string> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: new x509.Name(name),
    notBefore: new Date(),
    notAfter: new Date(Date.now() + DAY_MS),
    signingAlgorithm: algorithm,
    keys,
  });
  return certificate.toString('pem');
}

describe('certificates', async () => {
  const ca = await createCertificateAuthority({ commonName: 'Test CA' });
  const caCertificate = new X509Certificate(ca.certificatePem);
  const server = await issueCertificate({
    issuer: ca,
    commonName: 'localhost',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  const clientOptions = { issuer: ca, commonName: 'svc', uris: [SPIFFE_ID], usage: 'client' as const };
  const client = await issueCertificate(clientOptions);

  it('the CA is CA:TRUE (critical, pathLen 0), keyCertSign|cRLSign (critical), self-signed, valid 10 years', () => {
    const parsed = new x509.X509Certificate(ca.certificatePem);
    const constraints = parsed.getExtension(x509.BasicConstraintsExtension)!;
    assert.deepEqual([constraints.ca, constraints.pathLength, constraints.critical], [true, 0, true]);
    const usages = parsed.getExtension(x509.KeyUsagesExtension)!;
    const caUsages = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
    assert.deepEqual([usages.usages, usages.critical], [caUsages, true]);
    assert.ok(parsed.getExtension(x509.SubjectKeyIdentifierExtension));
    assert.equal(caCertificate.ca, true);
    assert.equal(caCertificate.verify(caCertificate.publicKey), true);
    assert.equal(span(describeCertificate(ca.certificatePem)), 10 * 365 * DAY_MS);
  });

  it('a server certificate for localhost / 127.0.0.1 verifies against its CA and matches the host', () => {
    const certificate = new X509Certificate(server.certificatePem);
    assert.equal(certificate.verify(caCertificate.publicKey), true);
    assert.equal(certificate.checkIssued(caCertificate), true);
    assert.equal(certificate.checkHost('localhost'), 'localhost');
    assert.equal(certificate.checkHost('example.com'), undefined);
    assert.equal(certificate.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(certificate.ca, false);
    assert.deepEqual(certificate.keyUsage, [SERVER_AUTH]); // Node's keyUsage lists the extended key usages
    assert.equal(span(describeCertificate(server.certificatePem)), 397 * DAY_MS);
  });

  it('a client certificate with a URI SAN verifies against its CA; describeCertificate returns its URI, DNS names and CN', () => {
    const certificate = new X509Certificate(client.certificatePem);
    assert.equal(certificate.verify(caCertificate.publicKey), true);
    assert.deepEqual(certificate.keyUsage, [CLIENT_AUTH]);
    const described = describeCertificate(client.certificatePem);
    assert.deepEqual(described.uris, [SPIFFE_ID]);
    assert.deepEqual(described.dnsNames, []);
    assert.equal(described.commonName, 'svc');
    assert.equal(span(described), 365 * DAY_MS);
    assert.equal(described.fingerprintSha256, certificate.fingerprint256);
    assert.equal(described.serialNumber, certificate.serialNumber);
    assert.match(client.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const serverInfo = describeCertificate(server.certificatePem);
    assert.deepEqual([serverInfo.dnsNames, serverInfo.uris, serverInfo.commonName], [['localhost'], [], 'localhost']);
  });

  it('leaves: issuer = CA subject byte for byte, CA:FALSE, digitalSignature, AKI = CA key id, SKI, random positive serial', () => {
    const parsedCa = new x509.X509Certificate(ca.certificatePem);
    const caKeyId = parsedCa.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    const serials = new Set<string>();
    for (const leaf of [server, client]) {
      const parsed = new x509.X509Certificate(leaf.certificatePem);
      // Some verifiers (Go's among them) chain by comparing these bytes, not the names' meaning.
      const caSubject = Buffer.from(parsedCa.subjectName.toArrayBuffer());
      assert.deepEqual(Buffer.from(parsed.issuerName.toArrayBuffer()), caSubject);
      assert.equal(parsed.getExtension(x509.BasicConstraintsExtension)!.ca, false);
      assert.equal(parsed.getExtension(x509.KeyUsagesExtension)!.usages, x509.KeyUsageFlags.digitalSignature);
      assert.equal(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId, caKeyId);
      assert.ok(parsed.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
      assert.match(parsed.serialNumber, /^[0-7][0-9a-f]{31}$/);
      assert.notEqual(BigInt(`0x${parsed.serialNumber}`), 0n);
      serials.add(parsed.serialNumber);
    }
    assert.equal(serials.size, 2);
  });

  it('the certificates complete a mutual TLS 1.3 handshake; wrong-usage or foreign client certificates are refused', async () => {
    assert.equal(await handshake(server, client, ca.certificatePem), `hello ${SPIFFE_ID}`);
    const serverUsageAsClient = await issueCertificate({ ...clientOptions, usage: 'server' });
    assert.doesNotMatch(await handshake(server, serverUsageAsClient, ca.certificatePem), /^hello/);
    const otherCa = await createCertificateAuthority({ commonName: 'Other CA' });
    const foreign = await issueCertificate({ ...clientOptions, issuer: otherCa });
    assert.doesNotMatch(await handshake(server, foreign, ca.certificatePem), /^hello/);
  });

  it('does not verify against another CA, and honours explicit validity', async () => {
    const other = await createCertificateAuthority({ commonName: 'B' });
    const notBefore = new Date('2020-01-01T00:00:00Z');
    const notAfter = new Date('2020-01-02T00:00:00Z');
    const leaf = await issueCertificate({ issuer: ca, commonName: 'old', usage: 'client', notBefore, notAfter });
    const otherKey = new X509Certificate(other.certificatePem).publicKey;
    assert.equal(new X509Certificate(leaf.certificatePem).verify(otherKey), false);
    const described = describeCertificate(leaf.certificatePem);
    assert.equal(described.notBefore.toISOString(), notBefore.toISOString());
    assert.equal(described.notAfter.toISOString(), notAfter.toISOString());
  });

  it('keeps names exactly: a comma, quote or "URI:" inside one name never makes two, and the subject is not re-parsed', async () => {
    const trickyCa = await createCertificateAuthority({ commonName: 'CA, O="x" é' });
    const uris = ['spiffe://a/b,URI:spiffe://admin', 'https://x/"q"\\', SPIFFE_ID];
    const leaf = await issueCertificate({
      issuer: trickyCa,
      commonName: 'svc\nCN=admin, O=x',
      uris,
      dnsNames: ['b,c', 'a.example'],
      usage: 'client',
    });
    const described = describeCertificate(leaf.certificatePem);
    assert.deepEqual(described.uris, uris);
    assert.deepEqual(described.dnsNames, ['b,c', 'a.example']);
    assert.equal(described.commonName, 'svc\nCN=admin, O=x');
    assert.equal(describeCertificate(trickyCa.certificatePem).commonName, 'CA, O="x" é');
    const issuer = new X509Certificate(trickyCa.certificatePem);
    assert.equal(new X509Certificate(leaf.certificatePem).checkIssued(issuer), true);
  });

  it('reads DER as well as PEM', () => {
    const der = new X509Certificate(client.certificatePem).raw;
    assert.deepEqual(describeCertificate(der), describeCertificate(client.certificatePem));
  });

  it('reports no common name when the subject has none, or more than one', async () => {
    assert.equal(describeCertificate(await selfSignedWithSubject([{ O: [{ utf8String: 'org' }] }])).commonName, null);
    const twoNames = await selfSignedWithSubject([{ CN: [{ utf8String: 'a' }] }, { CN: [{ utf8String: 'admin' }] }]);
    assert.equal(describeCertificate(twoNames).commonName, null);
  });

  it("parses Node's subjectAltName text, quoted or not, and refuses text it cannot read unambiguously", () => {
    assert.deepEqual(parseSubjectAltName(''), []);
    const text = 'DNS:a, IP Address:0:0:0:0:0:0:0:1, URI:"x\\u002c URI:y", othername:<unsupported>, URI:"q\\"\\\\"';
    assert.deepEqual(parseSubjectAltName(text), [
      { type: 'DNS', value: 'a' },
      { type: 'IP Address', value: '0:0:0:0:0:0:0:1' },
      { type: 'URI', value: 'x, URI:y' },
      { type: 'othername', value: '<unsupported>' },
      { type: 'URI', value: 'q"\\' },
    ]);
    for (const text of ['DNS', 'URI:"unterminated', 'URI:"a"b', 'DNS:a,DNS:b', "URI:it's"]) {
      assert.throws(() => parseSubjectAltName(text), /subjectAltName/, text);
    }
  });

  it('refuses an issuer key that is not the issuer certificate’s, bad names and empty validity periods', async () => {
    const other = await createCertificateAuthority({ commonName: 'Other' });
    const mismatched = { certificatePem: ca.certificatePem, privateKeyPem: other.privateKeyPem };
    await assert.rejects(issueCertificate({ issuer: mismatched, commonName: 'x', usage: 'client' }), /does not belong/);
    const refusals: Array<Parameters<typeof issueCertificate>[0]> = [
      { issuer: ca, commonName: '', usage: 'client' },
      { issuer: ca, commonName: 'a'.repeat(65), usage: 'client' },
      { issuer: ca, commonName: 'x', dnsNames: ['exämple.com'], usage: 'server' },
      { issuer: ca, commonName: 'x', dnsNames: [''], usage: 'server' },
      { issuer: ca, commonName: 'x', uris: ['spiffe://a b'], usage: 'client' },
      { issuer: ca, commonName: 'x', usage: 'client', notBefore: new Date(1000), notAfter: new Date(1000) },
    ];
    for (const options of refusals) {
      await assert.rejects(issueCertificate(options), RangeError, JSON.stringify(options.commonName));
    }
    await assert.rejects(createCertificateAuthority({ commonName: '' }), RangeError);
  });
});
