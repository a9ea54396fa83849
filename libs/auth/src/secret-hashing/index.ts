export * from './secret-hashing';
