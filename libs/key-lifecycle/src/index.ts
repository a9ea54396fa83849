export * from './key';
export * from './key-lifecycle-error';
export * from './clock';
export * from './key-policy';
export * from './ports';
