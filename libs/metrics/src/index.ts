export * from './registry';
export * from './process-metrics';
