export * from './certificate-identity';
export * from './grant-policy';
export * from './mtls.strategy';
export * from './operation.guard';
export * from './current-identity.decorator';
export * from './rate-limiter';
export * from './secret-hashing';
export * from './webauthn';
