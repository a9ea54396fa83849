import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY_MS, ManualClock, addDays, systemClock } from './clock';

const START = '2025-01-01T00:00:00.000Z';

describe('ManualClock', () => {
  it('starts at the given time and stands still until told to move', () => {
    const clock = new ManualClock(new Date(START));
    assert.deepEqual(clock.now(), new Date(START));
    assert.deepEqual(clock.now(), new Date(START));
  });

  it('hands out a fresh Date each time: changing one does not move the clock', () => {
    const clock = new ManualClock(new Date(START));
    const first = clock.now();
    assert.notEqual(clock.now(), first);
    first.setTime(0);
    assert.deepEqual(clock.now(), new Date(START));
  });

  it('copies the start date: changing it later does not move the clock', () => {
    const start = new Date(START);
    const clock = new ManualClock(start);
    start.setTime(0);
    assert.deepEqual(clock.now(), new Date(START));
  });

  const moves: ReadonlyArray<readonly [string, (clock: ManualClock) => void, string]> = [
    ['advanceDays(1) moves 24 hours', (c) => c.advanceDays(1), '2025-01-02T00:00:00.000Z'],
    ['advanceDays(90) moves 90 days', (c) => c.advanceDays(90), '2025-04-01T00:00:00.000Z'],
    ['advanceDays(0.5) moves 12 hours', (c) => c.advanceDays(0.5), '2025-01-01T12:00:00.000Z'],
    ['advanceDays(-1) moves back a day', (c) => c.advanceDays(-1), '2024-12-31T00:00:00.000Z'],
    ['advanceMs(1) moves one millisecond', (c) => c.advanceMs(1), '2025-01-01T00:00:00.001Z'],
    ['advanceMs(-1) moves back one millisecond', (c) => c.advanceMs(-1), '2024-12-31T23:59:59.999Z'],
    ['moves add up', (c) => (c.advanceDays(1), c.advanceMs(1000), c.advanceDays(1)), '2025-01-03T00:00:01.000Z'],
    ['set jumps to a given time', (c) => c.set(new Date('2030-06-15T08:30:00.000Z')), '2030-06-15T08:30:00.000Z'],
  ];
  for (const [title, move, expected] of moves) {
    it(title, () => {
      const clock = new ManualClock(new Date(START));
      move(clock);
      assert.equal(clock.now().toISOString(), expected);
    });
  }

  it('set copies its argument', () => {
    const clock = new ManualClock(new Date(START));
    const target = new Date('2030-01-01T00:00:00.000Z');
    clock.set(target);
    target.setTime(0);
    assert.equal(clock.now().toISOString(), '2030-01-01T00:00:00.000Z');
  });

  it('defaults to the current time', () => {
    const before = Date.now();
    const now = new ManualClock().now().getTime();
    const after = Date.now();
    assert.ok(before <= now && now <= after);
  });
});

describe('addDays and DAY_MS', () => {
  it('DAY_MS is 86 400 000', () => {
    assert.equal(DAY_MS, 86_400_000);
  });

  const table: ReadonlyArray<readonly [string, number, string]> = [
    [START, 0, START],
    [START, 7, '2025-01-08T00:00:00.000Z'],
    [START, 30, '2025-01-31T00:00:00.000Z'],
    ['2024-02-28T00:00:00.000Z', 1, '2024-02-29T00:00:00.000Z'], // leap year
    ['2025-02-28T00:00:00.000Z', 1, '2025-03-01T00:00:00.000Z'],
    [START, -1, '2024-12-31T00:00:00.000Z'],
  ];
  for (const [from, days, expected] of table) {
    it(`${from} + ${days} days = ${expected}`, () => {
      const date = new Date(from);
      const result = addDays(date, days);
      assert.equal(result.toISOString(), expected);
      assert.notEqual(result, date);
      assert.equal(date.toISOString(), from, 'the argument is unchanged');
    });
  }
});

describe('systemClock', () => {
  it('reads the wall clock', () => {
    const before = Date.now();
    const now = systemClock.now().getTime();
    const after = Date.now();
    assert.ok(before <= now && now <= after);
  });
});
