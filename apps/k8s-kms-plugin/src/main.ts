#!/usr/bin/env node
import { ConfigError, SETTINGS, loadConfig } from './config';
import { Logger } from './logger';
import { startPlugin } from './plugin';
import { rewriteSecretsCommand } from './rewrite-secrets';

const USAGE = `keyhold-kms-plugin: a Kubernetes KMS v2 plugin backed by Keyhold

Usage:
  keyhold-kms-plugin [serve]            serve v2.KeyManagementService on the unix socket
  keyhold-kms-plugin rewrite-secrets    after a rotation, rewrite every Secret under the new key_id
                                        (see: keyhold-kms-plugin rewrite-secrets --help)
  keyhold-kms-plugin --help

Settings (environment):
${SETTINGS.map(([name, def, what]) => `  ${name.padEnd(38)} ${what}${def ? ` [${def}]` : ''}`).join('\n')}

Docs: docs/kubernetes.md
`;

async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = new Logger(config.logLevel);
  const plugin = await startPlugin(config, logger);
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    logger.info('draining', { signal, drainTimeoutMs: config.drainTimeoutMs });
    void plugin.stop().then(({ forced }) => {
      logger.info('stopped', { forced });
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'serve') return serve();
  if (command === 'rewrite-secrets') {
    process.exitCode = await rewriteSecretsCommand(rest);
    return;
  }
  process.stderr.write(`keyhold-kms-plugin: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`keyhold-kms-plugin: ${error instanceof ConfigError ? 'configuration: ' : ''}${message}\n`);
  process.exit(1);
});
