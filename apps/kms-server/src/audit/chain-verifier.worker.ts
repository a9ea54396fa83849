import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { verifyChainSince } from './chain-verification';
import type { VerifyRequest, VerifyResponse } from './chain-verifier';

// The checkpointer's re-verification, on a thread of its own: reading and re-hashing thousands of records
// would otherwise take turns of the event loop that serves requests.
const pool = new pg.Pool({ connectionString: (workerData as { databaseUrl: string }).databaseUrl, max: 1, application_name: 'keyhold-audit-verifier' });
pool.on('error', () => undefined); // an idle connection dropped by the server is replaced at the next query

parentPort?.on('message', (request: VerifyRequest) => {
  const query = async (text: string, values: unknown[]) => (await pool.query(text, values)).rows;
  verifyChainSince(query, request.from, request.head, request.witnessed).then(
    (broken) => parentPort?.postMessage({ id: request.id, broken } satisfies VerifyResponse),
    (error: unknown) => parentPort?.postMessage({ id: request.id, error: (error as Error).message } satisfies VerifyResponse),
  );
});
