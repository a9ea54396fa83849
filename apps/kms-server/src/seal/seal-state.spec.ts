import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '@keyhold/contracts';
import { randomBytes } from '@keyhold/crypto-core';
import { InMemoryMasterKey } from './master-key';
import { SealState } from './seal-state';

describe('SealState', () => {
  it('an unseal a listener cannot finish seals again, disposes the key and fails with 503 UNAVAILABLE', async () => {
    const state = new SealState('shamir', null);
    const calls: string[] = [];
    state.onChange((sealed) => void calls.push(`first ${sealed ? 'sealed' : 'unsealed'}`));
    state.onChange((sealed) => {
      calls.push(`second ${sealed ? 'sealed' : 'unsealed'}`);
      if (!sealed) throw new Error('the CA could not be recorded');
    });
    state.onChange((sealed) => void calls.push(`third ${sealed ? 'sealed' : 'unsealed'}`));
    const key = new InMemoryMasterKey(randomBytes(32), 1, 'shamir');

    await assert.rejects(state.unseal(key), (error: ApiError) => error.code === 'UNAVAILABLE' && /sealed again/.test(error.message));
    assert.equal(state.sealed, true);
    assert.throws(() => key.seal(Buffer.from('x'), 'label'), /disposed/);
    // The unseal stopped at the failure; every seal listener ran.
    assert.deepEqual(calls, ['first unsealed', 'second unsealed', 'first sealed', 'second sealed', 'third sealed']);

    calls.length = 0;
    const ok = new SealState('shamir', null);
    ok.onChange((sealed) => void calls.push(sealed ? 'sealed' : 'unsealed'));
    await ok.unseal(new InMemoryMasterKey(randomBytes(32), 1, 'shamir'));
    assert.equal(ok.sealed, false);
    assert.deepEqual(calls, ['unsealed']);
  });

  it('a seal listener that fails does not stop the others or the seal', async () => {
    const state = new SealState('development-file', new InMemoryMasterKey(randomBytes(32), 1, 'development-file'));
    const ran: number[] = [];
    state.onChange(() => {
      throw new Error('boom');
    });
    state.onChange(() => void ran.push(2));
    await state.seal();
    assert.equal(state.sealed, true);
    assert.deepEqual(ran, [2]);
  });
});
