export * from './error-codes';
export * from './operations';
export * from './keys';
export * from './crypto-ops';
export * from './api-error';
export * from './grants';
export * from './admin';
export * from './audit';
