import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY_MS, ManualClock } from './clock';
import type { Key, KeyState, KeyVersion, VersionState } from './key';
import { KeyLifecycleError, type KeyLifecycleErrorCode } from './key-lifecycle-error';
import {
  DEFAULT_PENDING_DAYS,
  MAX_PENDING_DAYS,
  MIN_PENDING_DAYS,
  type KeyUpdate,
  type NewKeyInput,
  cancelKeyDestruction,
  cancelVersionDestruction,
  createKey,
  destroyKey,
  destroyVersion,
  disableKey,
  disableVersion,
  enableKey,
  enableVersion,
  isKeyDestructionDue,
  isRotationDue,
  MAX_LIVE_VERSIONS,
  rotateKey,
  scheduleKeyDestruction,
  scheduleVersionDestruction,
  updateKey,
  validatePendingDays,
  versionForDecryption,
  versionForEncryption,
  versionsDueForDestruction,
} from './key-policy';

// Table-driven tests of the pure lifecycle functions. Every call goes through `onFrozen`, which deep-freezes
// the inputs and then proves that nothing reachable from them changed: a function that mutated its input
// would throw a TypeError (compiled code is strict) or fail the snapshot comparison (Dates cannot be frozen).
// Dates below are written out, not computed with addDays, so that the clock arithmetic is checked too.

// ---------------------------------------------------------------------------------------------
// Time line of the fixtures.
const at = (iso: string): Date => new Date(iso);
const T0 = '2025-01-01T00:00:00.000Z'; // the key and version 1 are created
/** Version v is created at T0 + 10·(v-1) days. */
const VERSION_CREATED: Record<number, string> = {
  1: '2025-01-01T00:00:00.000Z',
  2: '2025-01-11T00:00:00.000Z',
  3: '2025-01-21T00:00:00.000Z',
  4: '2025-01-31T00:00:00.000Z',
};
const TOMBSTONE_AT = '2025-01-31T00:00:00.000Z'; // when fixture versions/keys in state destroyed were destroyed
const NOW = '2025-02-20T00:00:00.000Z'; // every test's clock starts here (T0 + 50 days)
const VERSION_DESTROY_AT = '2025-03-01T00:00:00.000Z'; // destroyAt of fixture versions pending destruction
const KEY_DESTROY_AT = '2025-03-10T00:00:00.000Z'; // destroyAt of fixture keys pending destruction
const NOW_PLUS_7 = '2025-02-27T00:00:00.000Z';
const NOW_PLUS_30 = '2025-03-22T00:00:00.000Z';
const NOW_PLUS_90 = '2025-05-21T00:00:00.000Z';
const V2_CREATED_PLUS_90 = '2025-04-11T00:00:00.000Z'; // the fixture's nextRotationAt (primary v2, 90 days)

const KEY_STATES: readonly KeyState[] = ['enabled', 'disabled', 'pending_destruction', 'destroyed'];
const VERSION_STATES: readonly VersionState[] = KEY_STATES;

// ---------------------------------------------------------------------------------------------
// Helpers.

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Deep-freezes `inputs`, runs `call`, and asserts (also when `call` throws) that no input changed. */
function onFrozen<T>(inputs: readonly unknown[], call: () => T): T {
  const before = structuredClone(inputs);
  for (const input of inputs) deepFreeze(input);
  try {
    return call();
  } finally {
    assert.deepEqual(inputs, before, 'a lifecycle function changed its input');
  }
}

function assertThrowsCode(call: () => unknown, code: KeyLifecycleErrorCode): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof KeyLifecycleError, `expected a KeyLifecycleError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.name, 'KeyLifecycleError');
    assert.ok(error.message.length > 0);
    return true;
  });
}

interface Throws {
  readonly throws: KeyLifecycleErrorCode;
}
const INVALID_STATE: Throws = { throws: 'INVALID_STATE' };
const VALIDATION_FAILED: Throws = { throws: 'VALIDATION_FAILED' };
const KEY_VERSION_DISABLED: Throws = { throws: 'KEY_VERSION_DISABLED' };
const KEY_VERSION_DESTROYED: Throws = { throws: 'KEY_VERSION_DESTROYED' };

function isThrows(outcome: unknown): outcome is Throws {
  return typeof outcome === 'object' && outcome !== null && 'throws' in outcome;
}
function show(outcome: unknown): string {
  return isThrows(outcome) ? `throws ${outcome.throws}` : `→ ${String(outcome)}`;
}

function versionIn(version: number, state: VersionState): KeyVersion {
  return {
    version,
    state,
    createdAt: at(VERSION_CREATED[version] ?? T0),
    destroyAt:
      state === 'pending_destruction' ? at(VERSION_DESTROY_AT) : state === 'destroyed' ? at(TOMBSTONE_AT) : null,
    destroyedAt: state === 'destroyed' ? at(TOMBSTONE_AT) : null,
  };
}

interface Shape {
  state?: KeyState;
  versions?: ReadonlyArray<readonly [number, VersionState]>;
  primary?: number;
  minDecryptionVersion?: number;
  rotationPeriodDays?: number | null;
}

/** A consistent key as the repository would load it; by default enabled, v1 disabled, v2 enabled and primary. */
function fixture(shape: Shape = {}): Key {
  const state = shape.state ?? 'enabled';
  const versions = (shape.versions ?? [[1, 'disabled'], [2, 'enabled']]).map(([n, s]) => versionIn(n, s));
  const primaryVersion = shape.primary ?? Math.max(...versions.map((v) => v.version));
  const rotationPeriodDays = shape.rotationPeriodDays === undefined ? 90 : shape.rotationPeriodDays;
  const primaryCreatedAt = versions.find((v) => v.version === primaryVersion)?.createdAt ?? at(T0);
  return {
    id: '6f1c1a9e-8d1e-4a53-9c39-2f1d2b9c0a11',
    name: 'payments',
    algorithm: 'aes-256-gcm',
    description: 'card numbers',
    state,
    primaryVersion,
    minDecryptionVersion: shape.minDecryptionVersion ?? 1,
    rotationPeriodDays,
    nextRotationAt:
      state === 'destroyed' || rotationPeriodDays === null
        ? null
        : new Date(primaryCreatedAt.getTime() + rotationPeriodDays * DAY_MS),
    destroyAt: state === 'pending_destruction' ? at(KEY_DESTROY_AT) : state === 'destroyed' ? at(TOMBSTONE_AT) : null,
    labels: { team: 'billing' },
    createdAt: at(T0),
    updatedAt: at(T0),
    versions,
  };
}

/** The default key in `state` (a destroyed key has only destroyed versions). */
function keyIn(state: KeyState): Key {
  return fixture({
    state,
    versions: state === 'destroyed' ? [[1, 'destroyed'], [2, 'destroyed']] : [[1, 'disabled'], [2, 'enabled']],
  });
}

/** Key in `keyState` whose non-primary version 1 is in `v1`; version 2 is the primary. */
function keyWithV1(keyState: KeyState, v1: VersionState): Key {
  return fixture({ state: keyState, versions: [[1, v1], [2, keyState === 'destroyed' ? 'destroyed' : 'enabled']] });
}

/** Every consistent (key state, version state) pair: a destroyed key has only destroyed versions. */
const KEY_VERSION_PAIRS: ReadonlyArray<readonly [KeyState, VersionState]> = KEY_STATES.flatMap((k) =>
  VERSION_STATES.filter((v) => k !== 'destroyed' || v === 'destroyed').map((v) => [k, v] as const),
);

function replaceVersion(key: Key, replacement: KeyVersion, now: Date): Key {
  return { ...key, updatedAt: now, versions: key.versions.map((v) => (v.version === replacement.version ? replacement : v)) };
}

type VersionMatrix = Record<KeyState, Partial<Record<VersionState, VersionState | Throws>>>;

/** Runs a version operation on version 1 over every consistent (key state, version state) pair. */
function versionMatrix(
  matrix: VersionMatrix,
  call: (key: Key, now: Date) => Key,
  expectedV1: (before: KeyVersion, to: VersionState, now: Date) => KeyVersion,
  clockAt: string = NOW,
): void {
  for (const [keyState, v1State] of KEY_VERSION_PAIRS) {
    const outcome = matrix[keyState][v1State];
    it(`key ${keyState}, version ${v1State} ${show(outcome)}`, () => {
      assert.ok(outcome !== undefined, 'table is missing this pair');
      const now = new ManualClock(at(clockAt)).now();
      const key = keyWithV1(keyState, v1State);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => call(key, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => call(key, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, replaceVersion(key, expectedV1(key.versions[0], outcome, now), now));
    });
  }
}

// ---------------------------------------------------------------------------------------------

describe('createKey', () => {
  it('makes an enabled key with version 1 as primary and minDecryptionVersion 1, created now', () => {
    const clock = new ManualClock(at(NOW));
    const input: NewKeyInput = { id: 'id-1', name: 'payments', algorithm: 'aes-256-gcm' };
    const key = onFrozen([input], () => createKey(input, clock.now()));
    assert.deepEqual(key, {
      id: 'id-1',
      name: 'payments',
      algorithm: 'aes-256-gcm',
      description: null,
      state: 'enabled',
      primaryVersion: 1,
      minDecryptionVersion: 1,
      rotationPeriodDays: null,
      nextRotationAt: null,
      destroyAt: null,
      labels: {},
      createdAt: at(NOW),
      updatedAt: at(NOW),
      versions: [{ version: 1, state: 'enabled', createdAt: at(NOW), destroyAt: null, destroyedAt: null }],
    });
  });

  const rotationCases: ReadonlyArray<readonly [string, number | null | undefined, string | null]> = [
    ['no rotationPeriodDays: no automatic rotation', undefined, null],
    ['rotationPeriodDays null: no automatic rotation', null, null],
    ['rotationPeriodDays 1: nextRotationAt now + 1 day', 1, '2025-02-21T00:00:00.000Z'],
    ['rotationPeriodDays 90: nextRotationAt now + 90 days', 90, NOW_PLUS_90],
  ];
  for (const [title, rotationPeriodDays, nextRotationAt] of rotationCases) {
    it(title, () => {
      const clock = new ManualClock(at(NOW));
      const input: NewKeyInput = { id: 'id-1', name: 'k', algorithm: 'aes-256-gcm', rotationPeriodDays };
      const key = onFrozen([input], () => createKey(input, clock.now()));
      assert.equal(key.rotationPeriodDays, rotationPeriodDays ?? null);
      assert.deepEqual(key.nextRotationAt, nextRotationAt === null ? null : at(nextRotationAt));
    });
  }

  it('keeps description and labels, and does not change its (frozen) input', () => {
    const input: NewKeyInput = {
      id: 'id-2',
      name: 'tokens',
      algorithm: 'aes-256-gcm',
      description: 'session tokens',
      rotationPeriodDays: 30,
      labels: { env: 'prod' },
    };
    const key = onFrozen([input], () => createKey(input, at(NOW)));
    assert.equal(key.description, 'session tokens');
    assert.deepEqual(key.labels, { env: 'prod' });
    assert.deepEqual(key.nextRotationAt, at(NOW_PLUS_30));
  });

  it('follows the clock: a key made later has later timestamps', () => {
    const clock = new ManualClock(at(NOW));
    const input: NewKeyInput = { id: 'id-3', name: 'k', algorithm: 'aes-256-gcm', rotationPeriodDays: 7 };
    const first = createKey(input, clock.now());
    clock.advanceDays(2);
    const second = createKey(input, clock.now());
    assert.equal(second.createdAt.getTime() - first.createdAt.getTime(), 2 * DAY_MS);
    assert.deepEqual(second.nextRotationAt, at('2025-03-01T00:00:00.000Z'));
  });
});

describe('rotateKey', () => {
  const table: ReadonlyArray<readonly [KeyState, 'rotates' | Throws]> = [
    ['enabled', 'rotates'],
    ['disabled', INVALID_STATE],
    ['pending_destruction', INVALID_STATE],
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${show(outcome)}`, () => {
      const now = new ManualClock(at(NOW)).now();
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => rotateKey(key, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => rotateKey(key, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, {
        ...key,
        primaryVersion: 3,
        nextRotationAt: at(NOW_PLUS_90),
        updatedAt: at(NOW),
        versions: [
          ...key.versions,
          { version: 3, state: 'enabled', createdAt: at(NOW), destroyAt: null, destroyedAt: null },
        ],
      });
    });
  }

  const numbering: ReadonlyArray<readonly [string, ReadonlyArray<readonly [number, VersionState]>, number, number]> = [
    ['after a single version: 2', [[1, 'enabled']], 1, 2],
    ['after destroyed versions: max + 1, never reusing a number', [[1, 'destroyed'], [2, 'destroyed'], [3, 'enabled']], 3, 4],
    ['after disabled and pending versions: max + 1', [[1, 'pending_destruction'], [2, 'disabled'], [3, 'enabled']], 3, 4],
    ['whatever the order of the versions array: max + 1', [[3, 'enabled'], [1, 'destroyed'], [2, 'disabled']], 3, 4],
    ['from the highest number, not the count, when numbers have a gap (1, 5): 6', [[1, 'destroyed'], [5, 'enabled']], 5, 6],
  ];
  for (const [title, versions, primary, expected] of numbering) {
    it(`numbers the new version ${title}`, () => {
      const key = fixture({ versions, primary });
      const next = onFrozen([key], () => rotateKey(key, at(NOW)));
      assert.equal(next.primaryVersion, expected);
      assert.equal(next.versions.length, key.versions.length + 1);
      assert.deepEqual(next.versions.at(-1), {
        version: expected,
        state: 'enabled',
        createdAt: at(NOW),
        destroyAt: null,
        destroyedAt: null,
      });
      assert.deepEqual(next.versions.slice(0, -1), key.versions, 'older versions are kept unchanged');
    });
  }

  it(`refuses a rotation past ${MAX_LIVE_VERSIONS} versions that are not destroyed; destroyed ones do not count`, () => {
    const full: Array<readonly [number, VersionState]> = Array.from({ length: MAX_LIVE_VERSIONS }, (_, i) => [i + 1, i === MAX_LIVE_VERSIONS - 1 ? 'enabled' : 'disabled'] as const);
    const key = fixture({ versions: full, primary: MAX_LIVE_VERSIONS });
    assertThrowsCode(() => rotateKey(key, at(NOW)), 'INVALID_STATE');
    const oneDestroyed = fixture({ versions: full.map(([version, state]) => [version, version === 1 ? 'destroyed' : state] as const), primary: MAX_LIVE_VERSIONS });
    assert.equal(rotateKey(oneDestroyed, at(NOW)).primaryVersion, MAX_LIVE_VERSIONS + 1);
  });

  it('yields consecutive versions 1..6 over five rotations, each created at the clock time', () => {
    const clock = new ManualClock(at(NOW));
    let key = createKey({ id: 'id', name: 'k', algorithm: 'aes-256-gcm' }, clock.now());
    const created = [clock.now()];
    for (let i = 0; i < 5; i++) {
      clock.advanceDays(1);
      const before = deepFreeze(key);
      key = rotateKey(before, clock.now());
      created.push(clock.now());
    }
    assert.deepEqual(
      key.versions.map((v) => v.version),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(key.primaryVersion, 6);
    assert.deepEqual(
      key.versions.map((v) => v.createdAt),
      created,
    );
    assert.ok(key.versions.every((v) => v.state === 'enabled'));
  });

  it('keeps the numbering after a destroyed version: create, rotate, destroy v1, rotate gives v3', () => {
    const clock = new ManualClock(at(NOW));
    let key = createKey({ id: 'id', name: 'k', algorithm: 'aes-256-gcm' }, clock.now());
    key = rotateKey(key, clock.now());
    key = scheduleVersionDestruction(key, 1, 7, clock.now());
    clock.advanceDays(7);
    key = destroyVersion(key, 1, clock.now());
    key = rotateKey(key, clock.now());
    assert.deepEqual(
      key.versions.map((v) => [v.version, v.state]),
      [
        [1, 'destroyed'],
        [2, 'enabled'],
        [3, 'enabled'],
      ],
    );
    assert.equal(key.primaryVersion, 3);
  });

  it('computes nextRotationAt from the clock at rotation time, not from the previous schedule', () => {
    const clock = new ManualClock(at(NOW));
    const key = fixture({ rotationPeriodDays: 90 });
    clock.set(at('2025-04-14T06:00:00.000Z')); // three days and six hours late
    const next = rotateKey(deepFreeze(key), clock.now());
    assert.deepEqual(next.nextRotationAt, at('2025-07-13T06:00:00.000Z'));
  });

  it('leaves nextRotationAt null for a key without a rotation period', () => {
    const key = fixture({ rotationPeriodDays: null });
    const next = onFrozen([key], () => rotateKey(key, at(NOW)));
    assert.equal(next.nextRotationAt, null);
    assert.equal(next.rotationPeriodDays, null);
  });

  it('keeps minDecryptionVersion: old versions keep decrypting after rotation', () => {
    const key = fixture({ versions: [[1, 'enabled'], [2, 'enabled']], minDecryptionVersion: 1 });
    const next = rotateKey(deepFreeze(key), at(NOW));
    assert.equal(next.minDecryptionVersion, 1);
    assert.equal(versionForDecryption(next, 1).version, 1);
    assert.equal(versionForEncryption(next).version, 3);
  });
});

describe('updateKey', () => {
  const table: ReadonlyArray<readonly [KeyState, 'updates' | Throws]> = [
    ['enabled', 'updates'],
    ['disabled', 'updates'],
    ['pending_destruction', 'updates'],
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${show(outcome)}, state unchanged`, () => {
      const now = new ManualClock(at(NOW)).now();
      const key = keyIn(from);
      const update: KeyUpdate = { description: 'new', labels: { owner: 'ops' } };
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key, update], () => updateKey(key, update, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key, update], () => updateKey(key, update, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, { ...key, description: 'new', labels: { owner: 'ops' }, updatedAt: at(NOW) });
    });
  }

  // minDecryptionVersion against a key whose primary is 2.
  const minDecryption: ReadonlyArray<readonly [KeyState, number, number | Throws]> = [
    ['enabled', 1, 1],
    ['enabled', 2, 2],
    ['enabled', 3, VALIDATION_FAILED],
    ['enabled', 100, VALIDATION_FAILED],
    ['disabled', 2, 2],
    ['disabled', 3, VALIDATION_FAILED],
    ['pending_destruction', 2, 2],
    ['pending_destruction', 3, VALIDATION_FAILED],
    ['destroyed', 3, INVALID_STATE], // the key state is checked first
  ];
  for (const [from, min, outcome] of minDecryption) {
    it(`minDecryptionVersion ${min} with primary 2, key ${from} ${show(outcome)}`, () => {
      const key = keyIn(from);
      const update: KeyUpdate = { minDecryptionVersion: min };
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key, update], () => updateKey(key, update, at(NOW))), outcome.throws);
        return;
      }
      const next = onFrozen([key, update], () => updateKey(key, update, at(NOW)));
      assert.deepEqual(next, { ...key, minDecryptionVersion: outcome, updatedAt: at(NOW) });
    });
  }

  it('lowers minDecryptionVersion again, bringing old versions back', () => {
    const key = fixture({ versions: [[1, 'enabled'], [2, 'enabled']], minDecryptionVersion: 2 });
    assertThrowsCode(() => versionForDecryption(key, 1), 'KEY_VERSION_DISABLED');
    const next = onFrozen([key], () => updateKey(key, { minDecryptionVersion: 1 }, at(NOW)));
    assert.equal(next.minDecryptionVersion, 1);
    assert.equal(versionForDecryption(next, 1).version, 1);
  });

  const rotation: ReadonlyArray<readonly [string, KeyUpdate, number | null, string | null]> = [
    // primary v2 was created 2025-01-11; the period counts from there, not from now.
    ['rotationPeriodDays 90 counts from the primary version creation', { rotationPeriodDays: 90 }, 90, V2_CREATED_PLUS_90],
    ['rotationPeriodDays 30 counts from the primary version creation (already past)', { rotationPeriodDays: 30 }, 30, '2025-02-10T00:00:00.000Z'],
    ['rotationPeriodDays null stops automatic rotation', { rotationPeriodDays: null }, null, null],
    ['no rotationPeriodDays keeps period and nextRotationAt', { description: 'x' }, 45, '2025-02-25T00:00:00.000Z'],
  ];
  for (const [title, update, period, next] of rotation) {
    it(title, () => {
      const key = fixture({ rotationPeriodDays: 45 }); // nextRotationAt 2025-02-25
      const updated = onFrozen([key, update], () => updateKey(key, update, at(NOW)));
      assert.equal(updated.rotationPeriodDays, period);
      assert.deepEqual(updated.nextRotationAt, next === null ? null : at(next));
    });
  }

  it('a period shorter than the primary version age makes rotation due at once', () => {
    const key = fixture({ rotationPeriodDays: null });
    assert.equal(isRotationDue(key, at(NOW)), false);
    const updated = updateKey(deepFreeze(key), { rotationPeriodDays: 30 }, at(NOW));
    assert.equal(isRotationDue(updated, at(NOW)), true);
  });

  it('description null clears it, undefined keeps it; labels are replaced, not merged', () => {
    const key = fixture();
    assert.equal(updateKey(deepFreeze(key), { description: null }, at(NOW)).description, null);
    assert.equal(updateKey(key, {}, at(NOW)).description, 'card numbers');
    assert.deepEqual(updateKey(key, { labels: { a: 'b' } }, at(NOW)).labels, { a: 'b' });
    assert.deepEqual(updateKey(key, { labels: {} }, at(NOW)).labels, {});
  });

  it('an empty update changes only updatedAt', () => {
    const key = fixture();
    const next = onFrozen([key], () => updateKey(key, {}, at(NOW)));
    assert.notEqual(next, key);
    assert.deepEqual(next, { ...key, updatedAt: at(NOW) });
  });
});

describe('disableKey', () => {
  const table: ReadonlyArray<readonly [KeyState, KeyState | Throws]> = [
    ['enabled', 'disabled'],
    ['disabled', 'disabled'],
    ['pending_destruction', INVALID_STATE],
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${show(outcome)}`, () => {
      const now = new ManualClock(at(NOW)).now();
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => disableKey(key, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => disableKey(key, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, { ...key, state: outcome, updatedAt: at(NOW) });
    });
  }
});

describe('enableKey', () => {
  const table: ReadonlyArray<readonly [KeyState, KeyState | Throws]> = [
    ['enabled', 'enabled'],
    ['disabled', 'enabled'],
    ['pending_destruction', INVALID_STATE], // cancel destruction first
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${show(outcome)}`, () => {
      const now = new ManualClock(at(NOW)).now();
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => enableKey(key, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => enableKey(key, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, { ...key, state: outcome, updatedAt: at(NOW) });
    });
  }
});

describe('scheduleKeyDestruction', () => {
  const table: ReadonlyArray<readonly [KeyState, KeyState | Throws]> = [
    ['enabled', 'pending_destruction'],
    ['disabled', 'pending_destruction'],
    ['pending_destruction', INVALID_STATE],
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${show(outcome)} (default window: 30 days)`, () => {
      const now = new ManualClock(at(NOW)).now();
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => scheduleKeyDestruction(key, undefined, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => scheduleKeyDestruction(key, undefined, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, { ...key, state: outcome, destroyAt: at(NOW_PLUS_30), updatedAt: at(NOW) });
    });
  }

  const windows: ReadonlyArray<readonly [number | undefined, string | Throws]> = [
    [undefined, NOW_PLUS_30],
    [6, VALIDATION_FAILED],
    [7, NOW_PLUS_7],
    [30, NOW_PLUS_30],
    [31, VALIDATION_FAILED],
    [7.5, VALIDATION_FAILED],
    [0, VALIDATION_FAILED],
    [-7, VALIDATION_FAILED],
  ];
  for (const [pendingDays, outcome] of windows) {
    it(`pendingDays ${String(pendingDays)} ${show(outcome)}`, () => {
      const key = keyIn('enabled');
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => scheduleKeyDestruction(key, pendingDays, at(NOW))), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => scheduleKeyDestruction(key, pendingDays, at(NOW)));
      assert.deepEqual(next.destroyAt, at(outcome));
    });
  }

  it('checks the key state before the window: a pending key with pendingDays 31 is INVALID_STATE', () => {
    const key = keyIn('pending_destruction');
    assertThrowsCode(() => onFrozen([key], () => scheduleKeyDestruction(key, 31, at(NOW))), 'INVALID_STATE');
  });

  it('leaves versions and nextRotationAt as they are, and stops encryption and decryption', () => {
    const key = fixture({ versions: [[1, 'enabled'], [2, 'enabled']] });
    const next = onFrozen([key], () => scheduleKeyDestruction(key, 7, at(NOW)));
    assert.deepEqual(next.versions, key.versions);
    assert.deepEqual(next.nextRotationAt, key.nextRotationAt);
    assertThrowsCode(() => versionForEncryption(next), 'INVALID_STATE');
    assertThrowsCode(() => versionForDecryption(next, 2), 'INVALID_STATE');
  });
});

describe('cancelKeyDestruction', () => {
  const table: ReadonlyArray<readonly [KeyState, KeyState | Throws]> = [
    ['enabled', INVALID_STATE],
    ['disabled', INVALID_STATE],
    ['pending_destruction', 'disabled'], // back to disabled, never straight to enabled
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${show(outcome)}`, () => {
      const now = new ManualClock(at(NOW)).now();
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => cancelKeyDestruction(key, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => cancelKeyDestruction(key, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, { ...key, state: outcome, destroyAt: null, updatedAt: at(NOW) });
    });
  }

  it('works after the window has ended too, as long as the key was not destroyed yet', () => {
    const key = keyIn('pending_destruction');
    const next = onFrozen([key], () => cancelKeyDestruction(key, at('2025-06-01T00:00:00.000Z')));
    assert.equal(next.state, 'disabled');
    assert.equal(next.destroyAt, null);
  });
});

describe('destroyKey', () => {
  const table: ReadonlyArray<readonly [KeyState, KeyState | Throws]> = [
    ['enabled', INVALID_STATE],
    ['disabled', INVALID_STATE],
    ['pending_destruction', 'destroyed'],
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} at its destroyAt ${show(outcome)}`, () => {
      const now = new ManualClock(at(KEY_DESTROY_AT)).now();
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => destroyKey(key, now)), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => destroyKey(key, now));
      assert.notEqual(next, key);
      assert.deepEqual(next, {
        ...key,
        state: 'destroyed',
        nextRotationAt: null,
        updatedAt: at(KEY_DESTROY_AT),
        versions: key.versions.map((v) => ({
          ...v,
          state: 'destroyed',
          destroyAt: at(KEY_DESTROY_AT),
          destroyedAt: at(KEY_DESTROY_AT),
        })),
      });
    });
  }

  const timing: ReadonlyArray<readonly [string, number, 'destroyed' | Throws]> = [
    ['one day before destroyAt', -DAY_MS, INVALID_STATE],
    ['1 ms before destroyAt', -1, INVALID_STATE],
    ['exactly at destroyAt', 0, 'destroyed'],
    ['1 ms after destroyAt', 1, 'destroyed'],
    ['a month after destroyAt', 30 * DAY_MS, 'destroyed'],
  ];
  for (const [title, offsetMs, outcome] of timing) {
    it(`${title} ${show(outcome)}`, () => {
      const clock = new ManualClock(at(KEY_DESTROY_AT));
      clock.advanceMs(offsetMs);
      const key = keyIn('pending_destruction');
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => destroyKey(key, clock.now())), outcome.throws);
        assert.equal(isKeyDestructionDue(key, clock.now()), false);
        return;
      }
      assert.equal(isKeyDestructionDue(key, clock.now()), true);
      const next = onFrozen([key], () => destroyKey(key, clock.now()));
      assert.equal(next.state, outcome);
      assert.deepEqual(next.destroyAt, at(KEY_DESTROY_AT), 'destroyAt keeps the scheduled time');
    });
  }

  it('refuses a pending key without destroyAt (INVALID_STATE)', () => {
    const key = { ...keyIn('pending_destruction'), destroyAt: null };
    assertThrowsCode(() => onFrozen([key], () => destroyKey(key, at(KEY_DESTROY_AT))), 'INVALID_STATE');
  });

  it('tombstones every version: keeps existing tombstones, a pending version keeps its own destroyAt', () => {
    const key = fixture({
      state: 'pending_destruction',
      versions: [[1, 'destroyed'], [2, 'pending_destruction'], [3, 'disabled'], [4, 'enabled']],
    });
    const now = at('2025-03-15T00:00:00.000Z');
    const next = onFrozen([key], () => destroyKey(key, now));
    assert.equal(next.versions[0], key.versions[0], 'an existing tombstone is kept as is');
    assert.deepEqual(next.versions, [
      versionIn(1, 'destroyed'),
      { ...versionIn(2, 'pending_destruction'), state: 'destroyed', destroyAt: at(VERSION_DESTROY_AT), destroyedAt: now },
      { ...versionIn(3, 'disabled'), state: 'destroyed', destroyAt: at(KEY_DESTROY_AT), destroyedAt: now },
      { ...versionIn(4, 'enabled'), state: 'destroyed', destroyAt: at(KEY_DESTROY_AT), destroyedAt: now },
    ]);
    assert.equal(next.primaryVersion, 4);
    for (const v of [1, 2, 3, 4]) assertThrowsCode(() => versionForDecryption(next, v), 'KEY_VERSION_DESTROYED');
  });
});

describe('disableVersion', () => {
  versionMatrix(
    {
      enabled: { enabled: 'disabled', disabled: 'disabled', pending_destruction: INVALID_STATE, destroyed: INVALID_STATE },
      disabled: { enabled: 'disabled', disabled: 'disabled', pending_destruction: INVALID_STATE, destroyed: INVALID_STATE },
      pending_destruction: {
        enabled: 'disabled',
        disabled: 'disabled',
        pending_destruction: INVALID_STATE,
        destroyed: INVALID_STATE,
      },
      destroyed: { destroyed: INVALID_STATE },
    },
    (key, now) => disableVersion(key, 1, now),
    (v, to) => ({ ...v, state: to }),
  );

  for (const keyState of ['enabled', 'disabled'] as const) {
    it(`refuses the primary version when the key is ${keyState} (INVALID_STATE)`, () => {
      const key = fixture({ state: keyState, versions: [[1, 'enabled'], [2, 'enabled']] });
      assertThrowsCode(() => onFrozen([key], () => disableVersion(key, 2, at(NOW))), 'INVALID_STATE');
    });
  }

  it('allows the former primary once the key is rotated', () => {
    const key = rotateKey(fixture({ versions: [[1, 'enabled'], [2, 'enabled']] }), at(NOW));
    const next = onFrozen([key], () => disableVersion(key, 2, at(NOW)));
    assert.equal(next.versions[1].state, 'disabled');
  });

  for (const version of [0, 3, 99]) {
    it(`refuses an unknown version ${version} (VALIDATION_FAILED)`, () => {
      const key = keyIn('enabled');
      assertThrowsCode(() => onFrozen([key], () => disableVersion(key, version, at(NOW))), 'VALIDATION_FAILED');
    });
  }
});

describe('enableVersion', () => {
  versionMatrix(
    {
      enabled: { enabled: 'enabled', disabled: 'enabled', pending_destruction: INVALID_STATE, destroyed: INVALID_STATE },
      disabled: { enabled: 'enabled', disabled: 'enabled', pending_destruction: INVALID_STATE, destroyed: INVALID_STATE },
      pending_destruction: {
        enabled: 'enabled',
        disabled: 'enabled',
        pending_destruction: INVALID_STATE, // cancel its destruction first
        destroyed: INVALID_STATE,
      },
      destroyed: { destroyed: INVALID_STATE },
    },
    (key, now) => enableVersion(key, 1, now),
    (v, to) => ({ ...v, state: to }),
  );

  it('accepts the (already enabled) primary version', () => {
    const key = keyIn('enabled');
    const next = onFrozen([key], () => enableVersion(key, 2, at(NOW)));
    assert.deepEqual(next, { ...key, updatedAt: at(NOW) });
  });

  it('refuses an unknown version (VALIDATION_FAILED)', () => {
    const key = keyIn('enabled');
    assertThrowsCode(() => onFrozen([key], () => enableVersion(key, 7, at(NOW))), 'VALIDATION_FAILED');
  });
});

describe('scheduleVersionDestruction', () => {
  versionMatrix(
    {
      enabled: {
        enabled: 'pending_destruction',
        disabled: 'pending_destruction',
        pending_destruction: INVALID_STATE,
        destroyed: INVALID_STATE,
      },
      disabled: {
        enabled: 'pending_destruction',
        disabled: 'pending_destruction',
        pending_destruction: INVALID_STATE,
        destroyed: INVALID_STATE,
      },
      pending_destruction: {
        enabled: INVALID_STATE,
        disabled: INVALID_STATE,
        pending_destruction: INVALID_STATE,
        destroyed: INVALID_STATE,
      },
      destroyed: { destroyed: INVALID_STATE },
    },
    (key, now) => scheduleVersionDestruction(key, 1, undefined, now),
    (v, to) => ({ ...v, state: to, destroyAt: at(NOW_PLUS_30) }),
  );

  for (const keyState of ['enabled', 'disabled'] as const) {
    it(`refuses the primary version when the key is ${keyState} (INVALID_STATE)`, () => {
      const key = fixture({ state: keyState, versions: [[1, 'enabled'], [2, 'enabled']] });
      assertThrowsCode(() => onFrozen([key], () => scheduleVersionDestruction(key, 2, 7, at(NOW))), 'INVALID_STATE');
    });
  }

  it('refuses the primary version before looking at pendingDays (INVALID_STATE, not VALIDATION_FAILED)', () => {
    const key = keyIn('enabled');
    assertThrowsCode(() => onFrozen([key], () => scheduleVersionDestruction(key, 2, 31, at(NOW))), 'INVALID_STATE');
  });

  const windows: ReadonlyArray<readonly [number | undefined, string | Throws]> = [
    [undefined, NOW_PLUS_30],
    [6, VALIDATION_FAILED],
    [7, NOW_PLUS_7],
    [30, NOW_PLUS_30],
    [31, VALIDATION_FAILED],
    [29.5, VALIDATION_FAILED],
    [Number.NaN, VALIDATION_FAILED],
  ];
  for (const [pendingDays, outcome] of windows) {
    it(`pendingDays ${String(pendingDays)} ${show(outcome)}`, () => {
      const key = keyIn('enabled');
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => scheduleVersionDestruction(key, 1, pendingDays, at(NOW))), outcome.throws);
        return;
      }
      const next = onFrozen([key], () => scheduleVersionDestruction(key, 1, pendingDays, at(NOW)));
      assert.deepEqual(next.versions[0], { ...key.versions[0], state: 'pending_destruction', destroyAt: at(outcome) });
      assert.equal(next.state, 'enabled', 'the key itself is untouched');
    });
  }

  it('refuses an unknown version (VALIDATION_FAILED)', () => {
    const key = keyIn('enabled');
    assertThrowsCode(() => onFrozen([key], () => scheduleVersionDestruction(key, 9, 7, at(NOW))), 'VALIDATION_FAILED');
  });

  it('a version pending destruction no longer decrypts (KEY_VERSION_DISABLED)', () => {
    const key = fixture({ versions: [[1, 'enabled'], [2, 'enabled']] });
    assert.equal(versionForDecryption(key, 1).version, 1);
    const next = scheduleVersionDestruction(deepFreeze(key), 1, 7, at(NOW));
    assertThrowsCode(() => versionForDecryption(next, 1), 'KEY_VERSION_DISABLED');
  });
});

describe('cancelVersionDestruction', () => {
  versionMatrix(
    {
      enabled: { enabled: INVALID_STATE, disabled: INVALID_STATE, pending_destruction: 'disabled', destroyed: INVALID_STATE },
      disabled: { enabled: INVALID_STATE, disabled: INVALID_STATE, pending_destruction: 'disabled', destroyed: INVALID_STATE },
      pending_destruction: {
        enabled: INVALID_STATE,
        disabled: INVALID_STATE,
        pending_destruction: 'disabled',
        destroyed: INVALID_STATE,
      },
      destroyed: { destroyed: INVALID_STATE },
    },
    (key, now) => cancelVersionDestruction(key, 1, now),
    (v, to) => ({ ...v, state: to, destroyAt: null }),
  );

  it('works after the version window has ended, as long as it was not destroyed yet', () => {
    const key = keyWithV1('enabled', 'pending_destruction');
    const next = onFrozen([key], () => cancelVersionDestruction(key, 1, at('2025-06-01T00:00:00.000Z')));
    assert.deepEqual(next.versions[0], { ...key.versions[0], state: 'disabled', destroyAt: null });
  });

  it('refuses an unknown version (VALIDATION_FAILED)', () => {
    const key = keyIn('enabled');
    assertThrowsCode(() => onFrozen([key], () => cancelVersionDestruction(key, 3, at(NOW))), 'VALIDATION_FAILED');
  });
});

describe('destroyVersion', () => {
  versionMatrix(
    {
      enabled: { enabled: INVALID_STATE, disabled: INVALID_STATE, pending_destruction: 'destroyed', destroyed: INVALID_STATE },
      disabled: { enabled: INVALID_STATE, disabled: INVALID_STATE, pending_destruction: 'destroyed', destroyed: INVALID_STATE },
      pending_destruction: {
        enabled: INVALID_STATE,
        disabled: INVALID_STATE,
        pending_destruction: 'destroyed',
        destroyed: INVALID_STATE,
      },
      destroyed: { destroyed: INVALID_STATE },
    },
    (key, now) => destroyVersion(key, 1, now),
    (v, to, now) => ({ ...v, state: to, destroyedAt: now }),
    VERSION_DESTROY_AT,
  );

  const timing: ReadonlyArray<readonly [string, number, 'destroyed' | Throws]> = [
    ['one day before destroyAt', -DAY_MS, INVALID_STATE],
    ['1 ms before destroyAt', -1, INVALID_STATE],
    ['exactly at destroyAt', 0, 'destroyed'],
    ['1 ms after destroyAt', 1, 'destroyed'],
  ];
  for (const [title, offsetMs, outcome] of timing) {
    it(`${title} ${show(outcome)}`, () => {
      const clock = new ManualClock(at(VERSION_DESTROY_AT));
      clock.advanceMs(offsetMs);
      const key = keyWithV1('enabled', 'pending_destruction');
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => destroyVersion(key, 1, clock.now())), outcome.throws);
        assert.deepEqual(versionsDueForDestruction(key, clock.now()), []);
        return;
      }
      assert.deepEqual(versionsDueForDestruction(key, clock.now()), [key.versions[0]]);
      const next = onFrozen([key], () => destroyVersion(key, 1, clock.now()));
      assert.deepEqual(next.versions[0], {
        ...key.versions[0],
        state: outcome,
        destroyAt: at(VERSION_DESTROY_AT),
        destroyedAt: clock.now(),
      });
      assert.deepEqual(next.versions[1], key.versions[1], 'other versions are untouched');
    });
  }

  it('refuses a pending version without destroyAt (INVALID_STATE)', () => {
    const base = keyWithV1('enabled', 'pending_destruction');
    const key = { ...base, versions: [{ ...base.versions[0], destroyAt: null }, base.versions[1]] };
    assertThrowsCode(() => onFrozen([key], () => destroyVersion(key, 1, at('2030-01-01T00:00:00.000Z'))), 'INVALID_STATE');
  });

  it('refuses an unknown version (VALIDATION_FAILED)', () => {
    const key = keyIn('enabled');
    assertThrowsCode(() => onFrozen([key], () => destroyVersion(key, 5, at(NOW))), 'VALIDATION_FAILED');
  });
});

describe('versionForEncryption', () => {
  const table: ReadonlyArray<readonly [KeyState, number | Throws]> = [
    ['enabled', 2],
    ['disabled', INVALID_STATE],
    ['pending_destruction', INVALID_STATE],
    ['destroyed', INVALID_STATE],
  ];
  for (const [from, outcome] of table) {
    it(`key ${from} ${isThrows(outcome) ? show(outcome) : `→ primary version ${outcome}`}`, () => {
      const key = keyIn(from);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => versionForEncryption(key)), outcome.throws);
        return;
      }
      const version = onFrozen([key], () => versionForEncryption(key));
      assert.deepEqual(version, versionIn(outcome, 'enabled'));
    });
  }

  for (const primaryState of ['disabled', 'pending_destruction', 'destroyed'] as const) {
    it(`refuses an enabled key whose primary version is ${primaryState} (INVALID_STATE)`, () => {
      const key = fixture({ versions: [[1, 'enabled'], [2, primaryState]] });
      assertThrowsCode(() => onFrozen([key], () => versionForEncryption(key)), 'INVALID_STATE');
    });
  }

  it('refuses an enabled key whose primary version is missing (INVALID_STATE)', () => {
    const key = fixture({ versions: [[1, 'enabled']], primary: 2 });
    assertThrowsCode(() => onFrozen([key], () => versionForEncryption(key)), 'INVALID_STATE');
  });

  it('uses the newest version after a rotation', () => {
    const key = rotateKey(keyIn('enabled'), at(NOW));
    assert.equal(onFrozen([key], () => versionForEncryption(key)).version, 3);
  });
});

describe('versionForDecryption', () => {
  const matrix: Record<KeyState, Partial<Record<VersionState, 'decrypts' | Throws>>> = {
    enabled: {
      enabled: 'decrypts',
      disabled: KEY_VERSION_DISABLED,
      pending_destruction: KEY_VERSION_DISABLED,
      destroyed: KEY_VERSION_DESTROYED,
    },
    disabled: {
      enabled: INVALID_STATE,
      disabled: INVALID_STATE,
      pending_destruction: INVALID_STATE,
      destroyed: KEY_VERSION_DESTROYED,
    },
    pending_destruction: {
      enabled: INVALID_STATE,
      disabled: INVALID_STATE,
      pending_destruction: INVALID_STATE,
      destroyed: KEY_VERSION_DESTROYED,
    },
    destroyed: { destroyed: KEY_VERSION_DESTROYED },
  };
  for (const [keyState, v1State] of KEY_VERSION_PAIRS) {
    const outcome = matrix[keyState][v1State];
    it(`key ${keyState}, version ${v1State} ${show(outcome)}`, () => {
      assert.ok(outcome !== undefined, 'table is missing this pair');
      const key = keyWithV1(keyState, v1State);
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => versionForDecryption(key, 1)), outcome.throws);
        return;
      }
      assert.equal(
        onFrozen([key], () => versionForDecryption(key, 1)),
        key.versions[0],
      );
    });
  }

  // Key enabled, versions 1..3 enabled, primary 3.
  const minDecryption: ReadonlyArray<readonly [number, number, 'decrypts' | Throws]> = [
    [1, 1, 'decrypts'],
    [2, 1, KEY_VERSION_DISABLED],
    [2, 2, 'decrypts'],
    [2, 3, 'decrypts'],
    [3, 2, KEY_VERSION_DISABLED],
    [3, 3, 'decrypts'],
  ];
  for (const [min, version, outcome] of minDecryption) {
    it(`minDecryptionVersion ${min}, version ${version} ${show(outcome)}`, () => {
      const key = fixture({ versions: [[1, 'enabled'], [2, 'enabled'], [3, 'enabled']], minDecryptionVersion: min });
      if (isThrows(outcome)) {
        assertThrowsCode(() => onFrozen([key], () => versionForDecryption(key, version)), outcome.throws);
        return;
      }
      assert.equal(onFrozen([key], () => versionForDecryption(key, version)).version, version);
    });
  }

  for (const version of [0, -1, 3, 99, 1.5, Number.NaN]) {
    it(`a version the key never had (${version}) is INVALID_CIPHERTEXT`, () => {
      for (const state of KEY_STATES) {
        const key = keyIn(state);
        assertThrowsCode(() => onFrozen([key], () => versionForDecryption(key, version)), 'INVALID_CIPHERTEXT');
      }
    });
  }

  it('a destroyed version never decrypts, whatever the key state and minDecryptionVersion', () => {
    for (const keyState of KEY_STATES) {
      for (const min of [1, 2]) {
        const key = fixture({
          state: keyState,
          versions: [[1, 'destroyed'], [2, keyState === 'destroyed' ? 'destroyed' : 'enabled']],
          minDecryptionVersion: min,
        });
        assertThrowsCode(() => versionForDecryption(key, 1), 'KEY_VERSION_DESTROYED');
      }
    }
  });

  it('decrypts exactly when the key is enabled, the version enabled and version >= minDecryptionVersion', () => {
    let checked = 0;
    for (const [keyState, v1State] of KEY_VERSION_PAIRS) {
      for (const min of [1, 2]) {
        const key = { ...keyWithV1(keyState, v1State), minDecryptionVersion: min };
        const expected = keyState === 'enabled' && v1State === 'enabled' && 1 >= min;
        let decrypts = true;
        try {
          versionForDecryption(key, 1);
        } catch (error) {
          assert.ok(error instanceof KeyLifecycleError);
          decrypts = false;
        }
        assert.equal(decrypts, expected, `key ${keyState}, version ${v1State}, min ${min}`);
        checked++;
      }
    }
    assert.equal(checked, 26);
  });
});

describe('isRotationDue', () => {
  const byState: ReadonlyArray<readonly [KeyState, boolean]> = [
    ['enabled', true],
    ['disabled', false],
    ['pending_destruction', false],
    ['destroyed', false],
  ];
  for (const [state, due] of byState) {
    it(`key ${state} with nextRotationAt in the past → ${due}`, () => {
      const key = { ...keyIn(state), nextRotationAt: at(T0) };
      assert.equal(
        onFrozen([key], () => isRotationDue(key, at(NOW))),
        due,
      );
    });
  }

  const timing: ReadonlyArray<readonly [string, number | null, boolean]> = [
    ['one day before nextRotationAt', -DAY_MS, false],
    ['1 ms before nextRotationAt', -1, false],
    ['exactly at nextRotationAt', 0, true],
    ['1 ms after nextRotationAt', 1, true],
    ['no nextRotationAt (no period)', null, false],
  ];
  for (const [title, offsetMs, due] of timing) {
    it(`enabled key, ${title} → ${due}`, () => {
      const clock = new ManualClock(at(V2_CREATED_PLUS_90));
      const key = offsetMs === null ? fixture({ rotationPeriodDays: null }) : fixture({ rotationPeriodDays: 90 });
      clock.advanceMs(offsetMs ?? 0);
      assert.equal(
        onFrozen([key], () => isRotationDue(key, clock.now())),
        due,
      );
    });
  }

  it('follows the clock: a new 90-day key is due after exactly 90 days, and not after rotating', () => {
    const clock = new ManualClock(at(NOW));
    let key = createKey({ id: 'id', name: 'k', algorithm: 'aes-256-gcm', rotationPeriodDays: 90 }, clock.now());
    clock.advanceDays(90);
    clock.advanceMs(-1);
    assert.equal(isRotationDue(key, clock.now()), false);
    clock.advanceMs(1);
    assert.deepEqual(clock.now(), at(NOW_PLUS_90));
    assert.equal(isRotationDue(key, clock.now()), true);
    key = rotateKey(key, clock.now());
    assert.equal(isRotationDue(key, clock.now()), false);
    clock.advanceDays(90);
    assert.equal(isRotationDue(key, clock.now()), true);
  });
});

describe('versionsDueForDestruction', () => {
  it('returns the pending versions whose destroyAt is at or before now, in order; nothing else', () => {
    const base = fixture({
      versions: [[1, 'pending_destruction'], [2, 'pending_destruction'], [3, 'pending_destruction'], [4, 'enabled']],
    });
    const now = at(NOW);
    const key: Key = {
      ...base,
      versions: [
        { ...base.versions[0], destroyAt: new Date(now.getTime() - DAY_MS) }, // past: due
        { ...base.versions[1], destroyAt: new Date(now.getTime()) }, // exactly now: due
        { ...base.versions[2], destroyAt: new Date(now.getTime() + 1) }, // 1 ms later: not due
        base.versions[3],
      ],
    };
    const due = onFrozen([key], () => versionsDueForDestruction(key, now));
    assert.deepEqual(
      due.map((v) => v.version),
      [1, 2],
    );
  });

  const byVersionState: ReadonlyArray<readonly [VersionState, number[]]> = [
    ['enabled', []],
    ['disabled', []],
    ['pending_destruction', [1]],
    ['destroyed', []], // a tombstone whose destroyAt has passed is never due again
  ];
  for (const [state, expected] of byVersionState) {
    it(`version ${state}, its destroyAt (or the tombstone's) passed → [${expected.join(', ')}]`, () => {
      const base = keyWithV1('enabled', state);
      const key = { ...base, versions: [{ ...base.versions[0], destroyAt: at(T0) }, base.versions[1]] };
      assert.deepEqual(
        onFrozen([key], () => versionsDueForDestruction(key, at(NOW)).map((v) => v.version)),
        expected,
      );
    });
  }

  const byKeyState: ReadonlyArray<readonly [KeyState, number[]]> = [
    ['enabled', [1]],
    ['disabled', [1]],
    ['pending_destruction', [1]],
    ['destroyed', []],
  ];
  for (const [keyState, expected] of byKeyState) {
    it(`key ${keyState} with version 1 ${keyState === 'destroyed' ? 'destroyed' : 'pending and due'} → [${expected.join(', ')}]`, () => {
      const key = keyWithV1(keyState, keyState === 'destroyed' ? 'destroyed' : 'pending_destruction');
      assert.deepEqual(
        onFrozen([key], () => versionsDueForDestruction(key, at(VERSION_DESTROY_AT)).map((v) => v.version)),
        expected,
      );
    });
  }

  // NOTE (doc mismatch, not a behaviour bug): the comment on versionsDueForDestruction (key-policy.ts:233) says
  // "all of them when the key itself is due", but only versions that are themselves pending and due are returned.
  // The one caller (KeysService.runDueWork) checks isKeyDestructionDue first and uses destroyKey, so nothing is lost.
  it('a key due for destruction does not make its enabled/disabled versions due (isKeyDestructionDue covers it)', () => {
    const key = keyIn('pending_destruction');
    assert.equal(isKeyDestructionDue(key, at(KEY_DESTROY_AT)), true);
    assert.deepEqual(
      onFrozen([key], () => versionsDueForDestruction(key, at(KEY_DESTROY_AT))),
      [],
    );
  });
});

describe('isKeyDestructionDue', () => {
  const byState: ReadonlyArray<readonly [KeyState, boolean]> = [
    ['enabled', false],
    ['disabled', false],
    ['pending_destruction', true],
    ['destroyed', false], // already done
  ];
  for (const [state, due] of byState) {
    it(`key ${state} with destroyAt in the past → ${due}`, () => {
      const key = { ...keyIn(state), destroyAt: at(T0) };
      assert.equal(
        onFrozen([key], () => isKeyDestructionDue(key, at(NOW))),
        due,
      );
    });
  }

  const timing: ReadonlyArray<readonly [string, number | null, boolean]> = [
    ['1 ms before destroyAt', -1, false],
    ['exactly at destroyAt', 0, true],
    ['1 ms after destroyAt', 1, true],
    ['without destroyAt', null, false],
  ];
  for (const [title, offsetMs, due] of timing) {
    it(`pending key, ${title} → ${due}`, () => {
      const clock = new ManualClock(at(KEY_DESTROY_AT));
      clock.advanceMs(offsetMs ?? 0);
      const key = offsetMs === null ? { ...keyIn('pending_destruction'), destroyAt: null } : keyIn('pending_destruction');
      assert.equal(
        onFrozen([key], () => isKeyDestructionDue(key, clock.now())),
        due,
      );
    });
  }
});

describe('validatePendingDays', () => {
  it('the window is 7..30 days, 30 by default', () => {
    assert.equal(MIN_PENDING_DAYS, 7);
    assert.equal(MAX_PENDING_DAYS, 30);
    assert.equal(DEFAULT_PENDING_DAYS, 30);
  });

  const table: ReadonlyArray<readonly [number | undefined, number | Throws]> = [
    [undefined, 30],
    [7, 7],
    [8, 8],
    [29, 29],
    [30, 30],
    [6, VALIDATION_FAILED],
    [31, VALIDATION_FAILED],
    [0, VALIDATION_FAILED],
    [-7, VALIDATION_FAILED],
    [7.5, VALIDATION_FAILED],
    [29.999, VALIDATION_FAILED],
    [6.9999, VALIDATION_FAILED],
    [Number.NaN, VALIDATION_FAILED],
    [Number.POSITIVE_INFINITY, VALIDATION_FAILED],
    [Number.NEGATIVE_INFINITY, VALIDATION_FAILED],
  ];
  for (const [input, outcome] of table) {
    it(`${String(input)} ${show(outcome)}`, () => {
      if (isThrows(outcome)) {
        assertThrowsCode(() => validatePendingDays(input), outcome.throws);
        return;
      }
      assert.equal(validatePendingDays(input), outcome);
    });
  }
});

describe('scenarios over the ManualClock', () => {
  it('schedule (7 days), not destroyable a millisecond early, destroyed exactly on time', () => {
    const clock = new ManualClock(at(NOW));
    let key = createKey({ id: 'id', name: 'k', algorithm: 'aes-256-gcm', rotationPeriodDays: 30 }, clock.now());
    key = rotateKey(key, clock.now());
    key = scheduleKeyDestruction(key, 7, clock.now());
    assert.deepEqual(key.destroyAt, at(NOW_PLUS_7));
    clock.advanceDays(7);
    clock.advanceMs(-1);
    assert.equal(isKeyDestructionDue(key, clock.now()), false);
    const early = deepFreeze(key);
    assertThrowsCode(() => destroyKey(early, clock.now()), 'INVALID_STATE');
    clock.advanceMs(1);
    assert.equal(isKeyDestructionDue(key, clock.now()), true);
    key = destroyKey(key, clock.now());
    assert.equal(key.state, 'destroyed');
    assert.deepEqual(
      key.versions.map((v) => [v.state, v.destroyedAt]),
      [
        ['destroyed', at(NOW_PLUS_7)],
        ['destroyed', at(NOW_PLUS_7)],
      ],
    );
    assert.equal(isRotationDue(key, at('2030-01-01T00:00:00.000Z')), false);
    assert.equal(isKeyDestructionDue(key, clock.now()), false);
    for (const call of [
      () => rotateKey(key, clock.now()),
      () => enableKey(key, clock.now()),
      () => disableKey(key, clock.now()),
      () => cancelKeyDestruction(key, clock.now()),
      () => scheduleKeyDestruction(key, 7, clock.now()),
      () => updateKey(key, { description: 'x' }, clock.now()),
      () => enableVersion(key, 1, clock.now()),
      () => versionForEncryption(key),
    ]) {
      assertThrowsCode(call, 'INVALID_STATE');
    }
    assertThrowsCode(() => versionForDecryption(key, 2), 'KEY_VERSION_DESTROYED');
  });

  it('cancelling destruction brings the key back disabled; enabling it restores encryption', () => {
    const clock = new ManualClock(at(NOW));
    let key = createKey({ id: 'id', name: 'k', algorithm: 'aes-256-gcm' }, clock.now());
    key = scheduleKeyDestruction(key, undefined, clock.now());
    clock.advanceDays(29);
    key = cancelKeyDestruction(key, clock.now());
    assert.equal(key.state, 'disabled');
    assertThrowsCode(() => versionForEncryption(key), 'INVALID_STATE');
    key = enableKey(key, clock.now());
    assert.equal(versionForEncryption(key).version, 1);
    assert.equal(versionForDecryption(key, 1).version, 1);
  });

  it('version lifecycle: rotate, disable, re-enable, schedule, cancel, schedule, destroy', () => {
    const clock = new ManualClock(at(NOW));
    let key = createKey({ id: 'id', name: 'k', algorithm: 'aes-256-gcm' }, clock.now());
    key = rotateKey(key, clock.now());
    key = disableVersion(key, 1, clock.now());
    assertThrowsCode(() => versionForDecryption(key, 1), 'KEY_VERSION_DISABLED');
    key = enableVersion(key, 1, clock.now());
    assert.equal(versionForDecryption(key, 1).version, 1);
    key = scheduleVersionDestruction(key, 1, 7, clock.now());
    key = cancelVersionDestruction(key, 1, clock.now());
    assert.equal(key.versions[0].state, 'disabled');
    key = scheduleVersionDestruction(key, 1, 10, clock.now());
    clock.advanceDays(10);
    assert.deepEqual(
      versionsDueForDestruction(key, clock.now()).map((v) => v.version),
      [1],
    );
    key = destroyVersion(key, 1, clock.now());
    assertThrowsCode(() => versionForDecryption(key, 1), 'KEY_VERSION_DESTROYED');
    assert.deepEqual(versionsDueForDestruction(key, clock.now()), []);
    assert.equal(versionForEncryption(key).version, 2);
  });
});

describe('purity: every function leaves deep-frozen inputs unchanged and returns new objects', () => {
  const now = at(VERSION_DESTROY_AT);
  const keyOperations: ReadonlyArray<readonly [string, (key: Key) => unknown]> = [
    ['rotateKey', (k) => rotateKey(k, now)],
    ['updateKey', (k) => updateKey(k, deepFreeze({ description: 'd', rotationPeriodDays: 10, minDecryptionVersion: 1 }), now)],
    ['disableKey', (k) => disableKey(k, now)],
    ['enableKey', (k) => enableKey(k, now)],
    ['scheduleKeyDestruction', (k) => scheduleKeyDestruction(k, 7, now)],
    ['cancelKeyDestruction', (k) => cancelKeyDestruction(k, now)],
    ['destroyKey', (k) => destroyKey(k, at(KEY_DESTROY_AT))],
    ['disableVersion', (k) => disableVersion(k, 1, now)],
    ['enableVersion', (k) => enableVersion(k, 1, now)],
    ['scheduleVersionDestruction', (k) => scheduleVersionDestruction(k, 1, 7, now)],
    ['cancelVersionDestruction', (k) => cancelVersionDestruction(k, 1, now)],
    ['destroyVersion', (k) => destroyVersion(k, 1, now)],
    ['versionForEncryption', (k) => versionForEncryption(k)],
    ['versionForDecryption', (k) => versionForDecryption(k, 1)],
    ['isRotationDue', (k) => isRotationDue(k, now)],
    ['versionsDueForDestruction', (k) => versionsDueForDestruction(k, now)],
    ['isKeyDestructionDue', (k) => isKeyDestructionDue(k, now)],
  ];
  for (const [name, operation] of keyOperations) {
    it(name, () => {
      let succeeded = 0;
      for (const [keyState, v1State] of KEY_VERSION_PAIRS) {
        const key = keyWithV1(keyState, v1State);
        let result: unknown;
        try {
          result = onFrozen([key], () => operation(key));
        } catch (error) {
          assert.ok(error instanceof KeyLifecycleError, `${name} threw ${String(error)}, not a KeyLifecycleError`);
          continue;
        }
        succeeded++;
        if (typeof result === 'object' && result !== null && 'versions' in result) {
          const next = result as Key;
          assert.notEqual(next, key);
          assert.ok(!Object.isFrozen(next), 'a fresh object, not the frozen input');
        }
      }
      assert.ok(succeeded > 0, `${name} succeeded for at least one state`);
    });
  }
});
