import { Inject, Injectable, Optional } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { TLSSocket } from 'node:tls';
import { Strategy } from 'passport-custom';
import { ApiError } from '@keyhold/contracts';
import { identityOfConnection, type ServiceIdentity } from './certificate-identity';

export const MTLS_STRATEGY = 'mtls';

/** 401 for a caller without a usable client certificate: the one wording for every route. */
export function noClientIdentity(): ApiError {
  return new ApiError(
    'UNAUTHENTICATED',
    'a client certificate signed by a trusted CA, naming the service (URI or DNS SAN, or CN, without control characters), is required',
  );
}

interface RequestWithSocket {
  raw?: { socket?: TLSSocket };
  socket?: TLSSocket;
}

/**
 * Passport strategy for the service plane. TLS has already refused certificates that do not chain to the
 * trusted CAs or are outside their validity; this turns the verified certificate into an identity, and
 * refuses a keep-alive connection whose certificate has expired since the handshake.
 */
/** The wall clock certificate validity is checked against; injectable so tests need not wait for expiry. */
export const CERTIFICATE_CLOCK = Symbol('CERTIFICATE_CLOCK');
export type CertificateClock = () => number;

/** Revoked client certificates, by SHA-256 fingerprint (Node's colon-separated upper-case hex). */
export interface RevocationCheck {
  isRevoked(fingerprintSha256: string): boolean;
}
export const REVOCATION_CHECK = Symbol('REVOCATION_CHECK');

@Injectable()
export class MtlsStrategy extends PassportStrategy(Strategy, MTLS_STRATEGY) {
  constructor(
    @Optional() @Inject(CERTIFICATE_CLOCK) private readonly now: CertificateClock = Date.now,
    @Optional() @Inject(REVOCATION_CHECK) private readonly revocations: RevocationCheck | null = null,
  ) {
    super();
  }

  validate(request: RequestWithSocket): ServiceIdentity {
    return authenticateConnection(request.raw?.socket ?? request.socket, this.now, this.revocations);
  }
}

/**
 * The caller of a request on a mutual-TLS connection, or UNAUTHENTICATED: TLS has verified the chain; this
 * refuses a certificate outside its validity now (a keep-alive connection outlives it) or revoked since.
 * Shared by the passport strategy and the crypto routes' own transport.
 */
export function authenticateConnection(
  socket: TLSSocket | undefined,
  now: CertificateClock,
  revocations: RevocationCheck | null,
): ServiceIdentity {
  const identity = socket && 'authorized' in socket ? identityOfConnection(socket) : null;
  if (!identity) {
    throw noClientIdentity();
  }
  const at = now();
  if (at > identity.notAfter || at < identity.notBefore) {
    throw new ApiError('UNAUTHENTICATED', 'the client certificate is not valid at this time');
  }
  if (revocations?.isRevoked(identity.fingerprintSha256)) {
    throw new ApiError('UNAUTHENTICATED', 'the client certificate has been revoked');
  }
  return identity;
}
