import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { createCertificateAuthority, describeCertificate, issueCertificate } from './certificates';

describe('certificates', () => {
  it('issues server and client certificates that verify against their CA', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA' });
    const caCertificate = new X509Certificate(ca.certificatePem);
    assert.equal(caCertificate.ca, true);
    const server = await issueCertificate({
      issuer: ca,
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    const serverCertificate = new X509Certificate(server.certificatePem);
    assert.equal(serverCertificate.verify(caCertificate.publicKey), true);
    assert.equal(serverCertificate.checkHost('localhost'), 'localhost');
    assert.equal(serverCertificate.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(serverCertificate.ca, false);

    const client = await issueCertificate({ issuer: ca, commonName: 'svc', uris: ['spiffe://prod/ns/a/sa/b'], usage: 'client' });
    assert.equal(new X509Certificate(client.certificatePem).verify(caCertificate.publicKey), true);
    const described = describeCertificate(client.certificatePem);
    assert.deepEqual(described.uris, ['spiffe://prod/ns/a/sa/b']);
    assert.deepEqual(described.dnsNames, []);
    assert.equal(described.commonName, 'svc');
    assert.ok(described.notAfter > described.notBefore);
    assert.match(client.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  });

  it('does not verify against another CA, and honours explicit validity', async () => {
    const ca = await createCertificateAuthority({ commonName: 'A' });
    const other = await createCertificateAuthority({ commonName: 'B' });
    const notBefore = new Date('2020-01-01T00:00:00Z');
    const notAfter = new Date('2020-01-02T00:00:00Z');
    const leaf = await issueCertificate({ issuer: ca, commonName: 'old', usage: 'client', notBefore, notAfter });
    assert.equal(new X509Certificate(leaf.certificatePem).verify(new X509Certificate(other.certificatePem).publicKey), false);
    const described = describeCertificate(leaf.certificatePem);
    assert.equal(described.notBefore.toISOString(), notBefore.toISOString());
    assert.equal(described.notAfter.toISOString(), notAfter.toISOString());
  });
});
