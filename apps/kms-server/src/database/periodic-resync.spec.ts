import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeriodicResync } from './periodic-resync';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PeriodicResync', () => {
  it('runs on its period, retries after a failure, and never after stop', async () => {
    let passes = 0;
    const resync = new PeriodicResync(10, async () => {
      passes += 1;
      if (passes === 1) throw new Error('database unreachable');
    });
    resync.start();
    for (let waited = 0; passes < 3 && waited < 5000; waited += 10) await tick(10);
    assert.ok(passes >= 3, 'a failed pass is followed by the next ones');
    await resync.stop();
    const stoppedAt = passes;
    await tick(50);
    await resync.runOnce();
    assert.equal(passes, stoppedAt);
  });

  it('a call during a pass gets a pass that begins after it; calls during one pass share one queued pass', async () => {
    let passes = 0;
    const finishes: Array<() => void> = [];
    const resync = new PeriodicResync(60_000, () => {
      passes += 1;
      return new Promise<void>((resolve) => finishes.push(resolve));
    });
    const first = resync.runOnce();
    const second = resync.runOnce(); // say, the listener reconnected while the first pass was reading
    const third = resync.runOnce();
    assert.equal(passes, 1);
    finishes[0]();
    await first;
    await tick(0);
    assert.equal(passes, 2, 'one more pass, begun after the first ended');
    finishes[1]();
    await Promise.all([second, third]);
    assert.equal(passes, 2, 'shared by the calls made during the first pass');
  });
});
