import assert from 'node:assert/strict';
import { Client } from 'pg';
import type { TestKeyhold } from './test-keyhold';

/**
 * Starts an audit export (as `session`) and holds it where it reads the checkpoints, on a table lock taken by a
 * connection of the test's own: while held, that export keeps the instance's one export place. `release` lets it
 * finish and resolves with its answer's status.
 */
export async function holdAnExport(kh: TestKeyhold, session: Parameters<TestKeyhold['adminHttp']>[0]): Promise<{ release(): Promise<number> }> {
  const holder = new Client({ connectionString: kh.database.url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE keyhold_audit_checkpoints IN ACCESS EXCLUSIVE MODE');
  const held = kh.adminHttp(session).get('/api/v1/audit/export').then((response) => response.status);
  const release = async () => {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
    return held;
  };
  try {
    for (let waited = 0; ; waited += 1) {
      const [{ blocked }] = await kh.dataSource.query(
        `SELECT count(*)::int AS blocked FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%keyhold_audit_checkpoints WHERE sequence BETWEEN%'`,
      );
      if (blocked > 0) return { release };
      assert.ok(waited < 200, 'the held export reached the checkpoints');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } catch (error) {
    await release();
    throw error;
  }
}
