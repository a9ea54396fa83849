import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommitter, QueueFullError } from './group-committer';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('GroupCommitter', () => {
  it('writes items submitted together in one batch, and answers each caller with its own result', async () => {
    const writes: number[][] = [];
    const committer = new GroupCommitter(async (items: number[]) => {
      writes.push(items);
      await tick(5);
      return items.map((item) => item * 10);
    }, { maxDelayMs: 2, maxBatch: 100 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => committer.submit(i)));
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 10));
    assert.equal(writes.length, 1);
  });

  it('keeps one batch in flight: what arrives meanwhile goes in the next one, as soon as it commits', async () => {
    const writes: number[][] = [];
    const committer = new GroupCommitter(async (items: number[]) => {
      writes.push(items);
      await tick(20);
      return items;
    }, { maxDelayMs: 1, maxBatch: 1000 });
    const first = committer.submit(1);
    await tick(5); // the first batch is being written
    const later = [committer.submit(2), committer.submit(3), committer.submit(4)];
    await Promise.all([first, ...later]);
    assert.deepEqual(writes, [[1], [2, 3, 4]]);
    assert.equal(committer.batches, 2);
  });

  it('splits at maxBatch and fails every caller of a failed batch (and only those)', async () => {
    let calls = 0;
    const committer = new GroupCommitter(async (items: number[]) => {
      calls += 1;
      if (calls === 1) throw new Error('database away');
      return items;
    }, { maxDelayMs: 50, maxBatch: 3 });
    const settled = await Promise.allSettled([1, 2, 3, 4].map((item) => committer.submit(item)));
    assert.deepEqual(settled.map((s) => s.status), ['rejected', 'rejected', 'rejected', 'fulfilled']);
    await committer.drain();
  });
  it('caps a batch by records, not by callers: a batch request weighs its items', async () => {
    const writes: number[][] = [];
    let release: () => void = () => undefined;
    const committer = new GroupCommitter(
      async (items: number[]) => {
        writes.push(items);
        if (writes.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return items;
      },
      { maxDelayMs: 0, maxBatch: 1000 },
      (records: number) => records,
    );
    const first = committer.submit(1);
    await tick(5); // in flight: what follows queues
    const heavy = Array.from({ length: 5 }, () => committer.submit(400));
    release();
    await Promise.all([first, ...heavy]);
    assert.deepEqual(writes.map((batch) => batch.reduce((sum, records) => sum + records, 0)), [1, 800, 800, 400]);
  });

  it('a single item heavier than a batch still goes, alone', async () => {
    const writes: number[][] = [];
    const committer = new GroupCommitter(async (items: number[]) => (writes.push(items), items), { maxDelayMs: 0, maxBatch: 10 }, (n: number) => n);
    await committer.submit(25);
    assert.deepEqual(writes, [[25]]);
  });

  it('refuses at once, instead of holding the caller, once maxQueued records wait (the database is slow)', async () => {
    let databaseSlow = true;
    let release: () => void = () => undefined;
    const committer = new GroupCommitter(
      async (items: number[]) => {
        if (databaseSlow) await new Promise<void>((resolve) => (release = resolve));
        return items;
      },
      { maxDelayMs: 0, maxBatch: 10, maxQueued: 30 },
      (n: number) => n,
    );
    const first = committer.submit(10);
    await tick(5); // the first batch hangs in the database
    const waiting = [committer.submit(10), committer.submit(10), committer.submit(10)];
    await assert.rejects(committer.submit(1), QueueFullError);
    databaseSlow = false;
    release();
    await Promise.all([first, ...waiting]);
    assert.equal(await committer.submit(1), 1, 'room again once the database catches up');
  });
});
