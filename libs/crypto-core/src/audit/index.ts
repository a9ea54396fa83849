export * from './audit-record';
export * from './audit-checkpoint';
export * from './audit-verifier';
export * from './audit-prune';
