import type { PeerCertificate, TLSSocket } from 'node:tls';
import { parseSubjectAltName } from '@keyhold/crypto-core';

/** Who called: derived from a client certificate that TLS has already verified against the trusted CAs. */
export interface ServiceIdentity {
  /** The first URI SAN (a SPIFFE ID, say), else the first DNS SAN, else the subject CN. */
  readonly id: string;
  readonly source: 'uri-san' | 'dns-san' | 'common-name';
  readonly fingerprintSha256: string;
  readonly notAfter: number;
  readonly notBefore: number;
}

export function identityFromPeerCertificate(certificate: PeerCertificate): ServiceIdentity | null {
  if (!certificate || Object.keys(certificate).length === 0) return null;
  const sans = subjectAltNamesOf(certificate);
  if (!sans) return null;
  const uri = sans.find((san) => san.type === 'URI')?.value;
  const dns = sans.find((san) => san.type === 'DNS')?.value;
  const cn = firstValue(certificate.subject?.CN);
  const [id, source] = uri
    ? [uri, 'uri-san' as const]
    : dns
      ? [dns, 'dns-san' as const]
      : cn
        ? [cn, 'common-name' as const]
        : [null, null];
  if (!id || !source || !isUsableName(id)) return null;
  return {
    id,
    source,
    fingerprintSha256: certificate.fingerprint256,
    notBefore: Date.parse(certificate.valid_from),
    notAfter: Date.parse(certificate.valid_to),
  };
}

/**
 * A name the rest of Keyhold can carry as is: no control characters (a NUL in a SAN is the classic way to make
 * one name read as another) and well-formed UTF-16 (a lone surrogate from a BMPString has no UTF-8 form). The
 * identity goes into grants, logs and every audit record; Postgres refuses NUL in text, so a batch of records
 * holding one would fail for every request in it.
 */
function isUsableName(name: string): boolean {
  return !CONTROL_OR_LONE_SURROGATE.test(name);
}
const CONTROL_OR_LONE_SURROGATE = /[\u0000-\u001f\u007f-\u009f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The names as certified (quoted values decoded, by the one parser Keyhold has); null when the text is not what Node prints. */
function subjectAltNamesOf(certificate: PeerCertificate): Array<{ type: string; value: string }> | null {
  try {
    return parseSubjectAltName(certificate.subjectaltname ?? '');
  } catch {
    return null;
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

const identities = new WeakMap<TLSSocket, ServiceIdentity | null>();

/**
 * The identity of a TLS connection, computed once per connection: reading the peer certificate costs about as
 * much as the AEAD work of a request, and a keep-alive connection carries thousands of requests.
 */
export function identityOfConnection(socket: TLSSocket): ServiceIdentity | null {
  let identity = identities.get(socket);
  if (identity === undefined) {
    identity = socket.authorized ? identityFromPeerCertificate(socket.getPeerCertificate(false)) : null;
    identities.set(socket, identity);
  }
  return identity;
}
