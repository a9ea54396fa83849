export * from './webauthn-error';
export * from './challenge-store';
export * from './webauthn-ceremonies';
