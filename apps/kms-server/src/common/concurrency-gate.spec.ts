import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimitedError } from '@keyhold/auth';
import { ConcurrencyGate } from './concurrency-gate';

/** A piece of work that runs until the test lets it finish. */
function held<T>(value: T) {
  let finish!: () => void;
  let started = false;
  const released = new Promise<void>((resolve) => (finish = resolve));
  return {
    work: async () => {
      started = true;
      await released;
      return value;
    },
    finish,
    get started() {
      return started;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ConcurrencyGate', () => {
  it('runs up to the limit, lets the next ones wait in arrival order, and refuses the rest with 429 and a Retry-After', async () => {
    const gate = new ConcurrencyGate({ limit: 1, maxWaiting: 2, retryAfterSeconds: 3, busy: 'the test gate is busy' });
    const [first, second, third] = [held('a'), held('b'), held('c')];
    const running = [gate.run(first.work), gate.run(second.work), gate.run(third.work)];
    await settle();
    assert.deepEqual([first.started, second.started, third.started], [true, false, false]);

    const refusal = await gate.run(async () => 'never').then(
      () => assert.fail('a fourth request was let in'),
      (error: unknown) => error,
    );
    assert.ok(refusal instanceof RateLimitedError);
    assert.equal(refusal.retryAfterSeconds, 3);
    assert.match(refusal.message, /^the test gate is busy; retry in 3 s$/);

    first.finish();
    await settle();
    assert.deepEqual([second.started, third.started], [true, false], 'the oldest waiting one goes next, alone');
    // A newcomer while one runs and one waits queues behind them (one waiting place is free again).
    const fourth = held('d');
    const late = gate.run(fourth.work);
    second.finish();
    await settle();
    assert.deepEqual([third.started, fourth.started], [true, false]);
    third.finish();
    fourth.finish();
    assert.deepEqual(await Promise.all([...running, late]), ['a', 'b', 'c', 'd']);
  });

  it('frees the place when the work fails, and passes the failure on', async () => {
    const gate = new ConcurrencyGate({ limit: 1, maxWaiting: 0, retryAfterSeconds: 1, busy: 'busy' });
    await assert.rejects(gate.run(async () => Promise.reject(new Error('the work failed'))), /the work failed/);
    assert.equal(await gate.run(async () => 'next'), 'next');
  });
});
