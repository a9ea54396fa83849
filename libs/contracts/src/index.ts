export * from './error-codes';
export * from './operations';
export * from './keys';
export * from './crypto-ops';
