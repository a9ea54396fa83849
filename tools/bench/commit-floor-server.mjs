// The audit comparison's floor (issue #6): what any durable commit per answer costs on this machine, whatever
// writes it. The bare server's work (one AES-256-GCM per request, tools/bench/bare-server.mjs) plus `?spin=N`
// microseconds of busy CPU, a knob that the bench turns until this server spends about as much CPU per request
// as Keyhold does without its audit trail. With FLOOR_DATABASE_URL set, every answer also waits for a group
// commit in that Postgres: the least an audit record can be (one bigint row per request, no chain, no hash, no
// JSON, no verification), written the way Keyhold's group commit writes (one INSERT per batch, one batch in
// flight, the next batch everything that queued meanwhile).
//
// Run as a child process of run-bench.mjs, configured like bare-server.mjs (BARE_CERT, BARE_KEY, BARE_CA,
// BARE_PORT, BARE_HOST) plus FLOOR_DATABASE_URL. Prints {"listening":<port>} once listening.
import pg from 'pg';
import { answer, encrypt, serveBare } from './bare-https.mjs';

const MAX_SPIN_US = 1000;
const TABLE = 'keyhold_bench_commit_floor';

const database = process.env.FLOOR_DATABASE_URL ? new pg.Client({ connectionString: process.env.FLOOR_DATABASE_URL }) : null;
if (database) {
  await database.connect();
  await database.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (n bigint PRIMARY KEY)`);
}

/** Group commit, reduced to its shape: callers wait for the batch that carries their row. */
const commits = { waiting: [], inFlight: false, scheduled: false, next: 1 };
function commitBatch() {
  commits.scheduled = false;
  if (commits.inFlight || commits.waiting.length === 0) return;
  const batch = commits.waiting;
  commits.waiting = [];
  commits.inFlight = true;
  const first = commits.next;
  commits.next += batch.length;
  database
    .query({ name: 'floor-append', text: `INSERT INTO ${TABLE} (n) SELECT generate_series($1::bigint, $2::bigint)`, values: [first, commits.next - 1] })
    .then(
      () => batch.forEach(({ resolve }) => resolve()),
      (error) => batch.forEach(({ reject }) => reject(error)),
    )
    .finally(() => {
      commits.inFlight = false;
      commitBatch();
    });
}
function committed() {
  return new Promise((resolve, reject) => {
    commits.waiting.push({ resolve, reject });
    if (!commits.inFlight && !commits.scheduled) {
      commits.scheduled = true;
      setImmediate(commitBatch); // after the requests already read in this turn, as Keyhold's group commit does
    }
  });
}

/** Busy for `us` microseconds: the CPU a heavier server would spend on each request. */
function spin(us) {
  const until = process.hrtime.bigint() + BigInt(us) * 1000n;
  while (process.hrtime.bigint() < until);
}

serveBare(
  (req, res) => {
    const spinUs = Math.min(MAX_SPIN_US, Math.max(0, Math.trunc(Number(new URL(req.url, 'https://floor').searchParams.get('spin')) || 0)));
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      let ciphertext;
      try {
        const plaintext = Buffer.from(JSON.parse(Buffer.concat(chunks).toString('utf8')).plaintext, 'base64');
        spin(spinUs);
        ciphertext = encrypt(plaintext);
      } catch {
        return answer(res, 400, { error: { code: 'VALIDATION_FAILED' } });
      }
      if (!database) return answer(res, 200, { ciphertext });
      committed().then(
        () => answer(res, 200, { ciphertext }),
        () => answer(res, 503, { error: { code: 'AUDIT_UNAVAILABLE' } }),
      );
    });
  },
  () => (database ? database.end() : Promise.resolve()),
);
