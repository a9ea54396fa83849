import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AuditChainPoint } from '@keyhold/crypto-core';

export interface VerifyRequest {
  id: number;
  from: AuditChainPoint;
  head: AuditChainPoint;
  witnessed: AuditChainPoint | null;
}

/** `broken`: why the chain does not verify (null: it does); `error`: it could not be checked (a database error). */
export type VerifyResponse = { id: number; broken: string | null } | { id: number; error: string };

/**
 * Runs `verifyChainSince` on a worker thread with its own database connection, started at the first request.
 * A worker that dies fails the requests in flight (the checkpoint is then not signed, and is tried again later)
 * and is replaced at the next request.
 */
export class ChainVerifier {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(broken: string | null): void; reject(error: Error): void }>();

  constructor(private readonly databaseUrl: string) {}

  verify(from: AuditChainPoint, head: AuditChainPoint, witnessed: AuditChainPoint | null): Promise<string | null> {
    const id = this.nextId++;
    return new Promise<string | null>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.started().postMessage({ id, from, head, witnessed } satisfies VerifyRequest);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(join(__dirname, 'chain-verifier.worker.js'), { workerData: { databaseUrl: this.databaseUrl } });
    worker.unref(); // never what keeps the process alive
    worker.on('message', (response: VerifyResponse) => {
      const waiting = this.pending.get(response.id);
      this.pending.delete(response.id);
      if ('error' in response) waiting?.reject(new Error(response.error));
      else waiting?.resolve(response.broken);
    });
    const failAll = (error: Error) => {
      if (this.worker === worker) this.worker = null;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`the audit chain verifier stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }
}
