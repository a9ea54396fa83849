import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommitter } from './group-committer';

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
});
