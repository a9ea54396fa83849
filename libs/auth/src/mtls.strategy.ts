import { Inject, Injectable, Optional } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { TLSSocket } from 'node:tls';
import { Strategy } from 'passport-custom';
import { ApiError } from '@keyhold/contracts';
import { identityOfConnection, type ServiceIdentity } from './certificate-identity';

export const MTLS_STRATEGY = 'mtls';

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
    const socket = request.raw?.socket ?? request.socket;
    const identity = socket && 'authorized' in socket ? identityOfConnection(socket) : null;
    if (!identity) {
      throw new ApiError('UNAUTHENTICATED', 'a client certificate signed by a trusted CA is required');
    }
    const now = this.now();
    if (now > identity.notAfter || now < identity.notBefore) {
      throw new ApiError('UNAUTHENTICATED', 'the client certificate is not valid at this time');
    }
    if (this.revocations?.isRevoked(identity.fingerprintSha256)) {
      throw new ApiError('UNAUTHENTICATED', 'the client certificate has been revoked');
    }
    return identity;
  }
}
