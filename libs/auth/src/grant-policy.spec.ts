import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GrantPolicy } from './grant-policy';

describe('GrantPolicy memo', () => {
  const grants = [{ identity: 'spiffe://test/app', keys: '*', operations: ['encrypt' as const] }];

  it('memoises decisions about key names, once per identity and name', () => {
    const policy = new GrantPolicy(grants);
    assert.ok(policy.isAllowed('spiffe://test/app', 'encrypt', 'orders'));
    assert.ok(policy.isAllowed('spiffe://test/app', 'encrypt', 'orders'));
    assert.ok(!policy.isAllowed('spiffe://test/other', 'encrypt', 'orders'));
    assert.equal(policy.memoisedDecisions, 2);
  });

  it('decides names no key can have without memoising them, denials and grants alike', () => {
    const policy = new GrantPolicy(grants);
    for (const name of ['x'.repeat(16 * 1024), 'UPPER', 'a'.repeat(65), '', '-dash', 'a b', 'ключ']) {
      assert.equal(policy.isAllowed('spiffe://test/app', 'encrypt', name), true, 'the glob still decides');
      assert.equal(policy.isAllowed('spiffe://test/other', 'encrypt', name), false);
      assert.throws(() => policy.authorize('spiffe://test/other', 'encrypt', name), { code: 'KEY_NOT_FOUND' } as never);
    }
    assert.equal(policy.memoisedDecisions, 0);
  });
});
