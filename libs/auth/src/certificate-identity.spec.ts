import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { identityFromPeerCertificate } from './certificate-identity';

/** The fields of Node's PeerCertificate the identity is read from. */
const peer = (fields: { subjectaltname?: string; CN?: string }): PeerCertificate =>
  ({
    subject: fields.CN ? { CN: fields.CN } : {},
    subjectaltname: fields.subjectaltname,
    fingerprint256: 'AA:BB',
    valid_from: 'Nov 26 00:00:00 2026 GMT',
    valid_to: 'Nov 26 00:00:00 2027 GMT',
  }) as unknown as PeerCertificate;

describe('service identity from a client certificate', () => {
  it('reads plain and JSON-quoted SAN values (Node quotes values with commas or quotes), and no identity from text it cannot read', () => {
    assert.equal(identityFromPeerCertificate(peer({ subjectaltname: 'URI:"spiffe://t/a, URI:spiffe://t/admin"' }))?.id, 'spiffe://t/a, URI:spiffe://t/admin');
    assert.equal(identityFromPeerCertificate(peer({ subjectaltname: 'DNS:"x,y.example"' }))?.id, 'x,y.example');
    assert.equal(identityFromPeerCertificate(peer({ subjectaltname: 'URI:spiffe://t/a"b', CN: 'c' })), null, 'an unquoted quote is not what Node prints');
  });

  it('is the first URI SAN, else the first DNS SAN, else the subject CN', () => {
    assert.equal(identityFromPeerCertificate(peer({ subjectaltname: 'DNS:b.example, URI:spiffe://t/a', CN: 'c' }))?.id, 'spiffe://t/a');
    assert.equal(identityFromPeerCertificate(peer({ subjectaltname: 'DNS:b.example', CN: 'c' }))?.source, 'dns-san');
    assert.equal(identityFromPeerCertificate(peer({ CN: 'billing' }))?.id, 'billing');
    assert.equal(identityFromPeerCertificate(peer({})), null);
  });

  it('refuses a name with control characters or ill-formed UTF-16: it would be a different name elsewhere', () => {
    for (const name of ['spiffe://t/a\u0000admin', 'spiffe://t/a\nb', 'spiffe://t/\u009b', 'spiffe://t/\ud800x', 'spiffe://t/\udc00']) {
      assert.equal(identityFromPeerCertificate(peer({ subjectaltname: `URI:${JSON.stringify(name)}` })), null, JSON.stringify(name));
      assert.equal(identityFromPeerCertificate(peer({ CN: name })), null, JSON.stringify(name));
    }
    assert.equal(identityFromPeerCertificate(peer({ CN: 'zoë 😀' }))?.id, 'zoë 😀', 'non-ASCII and surrogate pairs are fine');
  });
});
