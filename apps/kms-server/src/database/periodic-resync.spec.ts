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

  it('shares one pass between concurrent calls', async () => {
    let passes = 0;
    let finish: () => void = () => undefined;
    const resync = new PeriodicResync(60_000, () => {
      passes += 1;
      return new Promise<void>((resolve) => (finish = resolve));
    });
    const first = resync.runOnce();
    const second = resync.runOnce();
    finish();
    await Promise.all([first, second]);
    assert.equal(passes, 1);
  });
});
