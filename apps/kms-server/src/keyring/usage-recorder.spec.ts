import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageRecorder, type UsageSink } from './usage-recorder';

/** A sink whose writes hang until the test releases them, as a database that stopped answering does. */
function hangingSink() {
  const writes: Array<Array<{ count: number }>> = [];
  const releases: Array<() => void> = [];
  const sink = {
    addUsage: (entries: Array<{ count: number }>) => {
      writes.push(entries);
      return new Promise<void>((resolve) => releases.push(resolve));
    },
  } as unknown as UsageSink;
  return { sink, writes, release: () => releases.shift()?.() };
}

describe('UsageRecorder', () => {
  it('flushes one at a time: while a write hangs, the next flushes wait instead of taking more connections', async () => {
    const { sink, writes, release } = hangingSink();
    const recorder = new UsageRecorder(sink, 60_000);
    recorder.record('k', 1, 3);
    const first = recorder.flush();
    recorder.record('k', 1, 2);
    const second = recorder.flush();
    assert.equal(writes.length, 1, 'no second write while the first hangs');
    release();
    await Promise.all([first, second]);
    const third = recorder.flush();
    assert.deepEqual(writes.map((batch) => batch.map((entry) => entry.count)), [[3], [2]]);
    release();
    await third;
  });

  it('counts what a flush is writing, so that reads in the meantime are exact', async () => {
    const { sink, release } = hangingSink();
    const recorder = new UsageRecorder(sink, 60_000);
    recorder.record('k', 1, 3);
    const flushing = recorder.flush();
    recorder.record('k', 1, 2);
    assert.equal(recorder.pendingFor('k', 1).count, 5);
    release();
    await flushing;
    assert.equal(recorder.pendingFor('k', 1).count, 2);
  });
});
