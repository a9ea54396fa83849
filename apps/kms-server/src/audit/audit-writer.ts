import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AuditEntry } from '@keyhold/crypto-core';
import type { GroupCommitOptions } from './group-committer';

export interface AuditWriterSettings {
  databaseUrl: string;
  groupCommit: GroupCommitOptions;
}

/** Everything one turn of the request thread's event loop appended: one message to the writer. */
export interface AppendRequest {
  kind: 'append';
  id: number;
  entries: AuditEntry[];
}
export type ToWriter = AppendRequest | { kind: 'forget-head' } | { kind: 'close' };
export type FromWriter =
  | { kind: 'appended'; id: number; firstSequence: number; batches: number }
  | { kind: 'failed'; id: number; message: string; batches: number }
  | { kind: 'connection-lost'; message: string }
  | { kind: 'closed' };

interface Waiting {
  count: number;
  resolve(sequences: number[]): void;
  reject(error: Error): void;
}

export interface AuditWriterEvents {
  /** The chain head after a group commit of this instance (checkpoints count from it). */
  appended(headSequence: number): void;
  /** A note for the log: the writer's connection dropped, or the thread died (its requests already failed). */
  trouble(message: string): void;
}

/**
 * The request thread's side of the audit writer. Group commits (chaining, SHA-256, the JSON of the batch,
 * the Postgres protocol) run in a worker thread: on the hot path the event loop serving requests only queues
 * entries, and everything appended in one turn of the loop goes to the writer as one message. Each caller
 * gets the sequence numbers of its own entries once they are committed, or an error. A writer thread that dies
 * fails what it had in flight (audit fails closed) and is replaced by the next append.
 */
export class AuditWriterThread {
  private worker: Worker | null = null;
  private outbox: Array<{ entries: AuditEntry[]; waiting: Waiting }> = [];
  private flushScheduled = false;
  private readonly inFlight = new Map<number, Waiting[]>();
  private nextId = 1;
  private idle: Array<() => void> = [];
  private closing: Promise<void> | null = null;
  /** Group commits so far (for tests: fewer than records under concurrency is the point). */
  batches = 0;

  constructor(
    private readonly settings: AuditWriterSettings,
    private readonly events: AuditWriterEvents,
  ) {}

  append(entries: AuditEntry[]): Promise<number[]> {
    if (this.closing) return Promise.reject(new Error('the audit writer is closed'));
    return new Promise((resolve, reject) => {
      this.outbox.push({ entries, waiting: { count: entries.length, resolve, reject } });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // After the requests already read in this turn of the event loop: they travel together.
        setImmediate(() => this.flush());
      }
    });
  }

  forgetHead(): void {
    this.worker?.postMessage({ kind: 'forget-head' } satisfies ToWriter);
  }

  /** Resolves once everything appended so far is committed (or failed). */
  drain(): Promise<void> {
    this.flush();
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Drains, then ends the writer thread and its connection. */
  close(): Promise<void> {
    this.closing ??= this.drain().then(async () => {
      const worker = this.worker;
      this.worker = null;
      if (!worker) return;
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ kind: 'close' } satisfies ToWriter);
      });
    });
    return this.closing;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0) return;
    const sending = this.outbox;
    this.outbox = [];
    const id = this.nextId++;
    this.inFlight.set(
      id,
      sending.map((queued) => queued.waiting),
    );
    const entries = sending.length === 1 ? sending[0].entries : sending.flatMap((queued) => queued.entries);
    this.writer().postMessage({ kind: 'append', id, entries } satisfies ToWriter);
  }

  private writer(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(join(__dirname, 'audit-writer.worker.js'), { workerData: this.settings, name: 'keyhold-audit-writer' });
    // The HTTP listeners keep the process alive; an idle writer must not.
    worker.unref();
    worker.on('message', (message: FromWriter) => this.received(message));
    worker.on('error', (error) => this.lost(worker, `the audit writer thread failed: ${error.message}`));
    worker.on('exit', (code) => this.lost(worker, `the audit writer thread exited (code ${code})`));
    this.worker = worker;
    return worker;
  }

  private received(message: FromWriter): void {
    switch (message.kind) {
      case 'appended': {
        this.batches = message.batches;
        let sequence = message.firstSequence;
        for (const waiting of this.settle(message.id)) {
          const sequences = new Array<number>(waiting.count);
          for (let index = 0; index < waiting.count; index += 1) sequences[index] = sequence++;
          waiting.resolve(sequences);
        }
        this.events.appended(sequence - 1);
        return;
      }
      case 'failed': {
        this.batches = message.batches;
        const error = new Error(message.message);
        for (const waiting of this.settle(message.id)) waiting.reject(error);
        return;
      }
      case 'connection-lost':
        this.events.trouble(`audit connection lost; reconnecting on next use: ${message.message}`);
        return;
      case 'closed':
        return;
    }
  }

  private settle(id: number): Waiting[] {
    const waiting = this.inFlight.get(id) ?? [];
    this.inFlight.delete(id);
    if (this.inFlight.size === 0) {
      const idle = this.idle;
      this.idle = [];
      for (const resolve of idle) resolve();
    }
    return waiting;
  }

  /** The thread is gone: whatever it had in flight fails (fail closed); the next append starts a new one. */
  private lost(worker: Worker, why: string): void {
    if (this.worker !== worker) return; // closed on purpose, or already replaced
    this.worker = null;
    if (this.inFlight.size > 0) this.events.trouble(why);
    const error = new Error(why);
    for (const id of [...this.inFlight.keys()]) for (const waiting of this.settle(id)) waiting.reject(error);
  }
}
