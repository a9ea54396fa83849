// The coalescer's scheduling and error shaping, against a scripted Keyhold whose answers the test releases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyholdApiError, KeyholdItemError, type KeyView } from '@keyhold/client-sdk';
import { MAX_REQUEST_BODY_BYTES } from '@keyhold/contracts';
import { type BatchingKeyholdClient, CoalescingUpstream, MAX_BATCH_BODY_BYTES } from './coalescing-upstream';

function scriptedKeyhold() {
  const requests: Array<{ route: string; items: string[]; release(): void; released?: boolean }> = [];
  const gate = (route: string, items: string[]) =>
    new Promise<void>((release) => {
      requests.push({ route, items, release });
    });
  const decryptOf = (ciphertext: string) => {
    if (ciphertext.startsWith('bad')) return new KeyholdItemError('INVALID_CIPHERTEXT', 'the ciphertext does not authenticate');
    return { plaintext: Buffer.from(ciphertext), keyName: 'k', keyVersion: 1 };
  };
  const client: BatchingKeyholdClient = {
    getKey: async () => ({ name: 'k' }) as KeyView,
    async encrypt(name, plaintext) {
      await gate('encrypt', [Buffer.from(plaintext).toString()]);
      return { ciphertext: `ct-${Buffer.from(plaintext).toString()}`, keyName: name, keyVersion: 1 };
    },
    async decrypt(_name, ciphertext) {
      await gate('decrypt', [ciphertext]);
      const result = decryptOf(ciphertext);
      if (result instanceof KeyholdItemError) {
        throw new KeyholdApiError({ status: 400, code: result.code, message: result.message, method: 'POST', path: '/v1/keys/k/decrypt' });
      }
      return result;
    },
    async encryptBatch(name, items) {
      await gate('encrypt/batch', items.map((i) => Buffer.from(i.plaintext).toString()));
      return items.map((i) => ({ ciphertext: `ct-${Buffer.from(i.plaintext).toString()}`, keyName: name, keyVersion: 1 }));
    },
    async decryptBatch(_name, items) {
      const labels = items.map((i) => i.ciphertext);
      await gate('decrypt/batch', labels);
      if (labels.includes('outage')) throw new Error('connection reset');
      return labels.map(decryptOf);
    },
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { client, requests, settle };
}

void describe('CoalescingUpstream', () => {
  void it('sends a call alone while the wire is free and gathers the ones that wait into one batch', async () => {
    const { client, requests, settle } = scriptedKeyhold();
    const upstream = new CoalescingUpstream(client, { maxRequestsInFlight: 2 });
    const answers = ['a', 'b', 'c', 'd', 'e'].map((p) => upstream.encrypt('k', Buffer.from(p)));
    await settle();
    assert.deepEqual(requests.map((r) => [r.route, r.items]), [['encrypt', ['a']], ['encrypt', ['b']]]);
    requests[0].release();
    await settle();
    assert.deepEqual(requests[2].route, 'encrypt/batch');
    assert.deepEqual(requests[2].items, ['c', 'd', 'e']);
    for (const r of requests.slice(1)) r.release();
    assert.deepEqual((await Promise.all(answers)).map((a) => a.ciphertext), ['ct-a', 'ct-b', 'ct-c', 'ct-d', 'ct-e']);
  });

  void it("gives each caller its own item's refusal, shaped like the refusal of a single call", async () => {
    const { client, requests, settle } = scriptedKeyhold();
    const upstream = new CoalescingUpstream(client, { maxRequestsInFlight: 1 });
    const first = upstream.decrypt('k', 'ok-1');
    const batched = ['ok-2', 'bad-3', 'ok-4'].map((c) => upstream.decrypt('k', c).then((r) => r.plaintext.toString(), (e: unknown) => e));
    await settle();
    requests[0].release();
    await settle();
    assert.deepEqual(requests[1].items, ['ok-2', 'bad-3', 'ok-4']);
    requests[1].release();
    assert.equal((await first).plaintext.toString(), 'ok-1');
    const [ok2, bad3, ok4] = await Promise.all(batched);
    assert.equal(ok2, 'ok-2');
    assert.equal(ok4, 'ok-4');
    assert.ok(bad3 instanceof KeyholdApiError);
    assert.equal(bad3.code, 'INVALID_CIPHERTEXT');
    assert.equal(bad3.status, 422); // the contract's status for INVALID_CIPHERTEXT
  });

  void it('fails every caller of a batch whose request failed, and keeps serving afterwards', async () => {
    const { client, requests, settle } = scriptedKeyhold();
    const upstream = new CoalescingUpstream(client, { maxRequestsInFlight: 1 });
    const first = upstream.decrypt('k', 'ok-1');
    const batched = ['outage', 'ok-2'].map((c) => upstream.decrypt('k', c).then(() => 'resolved', (e: Error) => e.message));
    await settle();
    requests[0].release();
    await settle();
    requests[1].release();
    await first;
    assert.deepEqual(await Promise.all(batched), ['connection reset', 'connection reset']);
    const after = upstream.decrypt('k', 'ok-5');
    await settle();
    requests[2].release();
    assert.equal((await after).plaintext.toString(), 'ok-5');
  });

  void it('never puts two keys in one batch, nor more than the batch limit', async () => {
    const { client, requests, settle } = scriptedKeyhold();
    const upstream = new CoalescingUpstream(client, { maxRequestsInFlight: 1, maxBatchItems: 2 });
    const calls = [upstream.decrypt('k', 'x-0'), upstream.decrypt('k', 'x-1'), upstream.decrypt('other', 'y-2'), upstream.decrypt('k', 'x-3'), upstream.decrypt('k', 'x-4')];
    for (let i = 0; i < 4; i++) {
      await settle();
      requests[i].release();
    }
    await Promise.all(calls);
    assert.deepEqual(requests.map((r) => r.items), [['x-0'], ['x-1', 'x-3'], ['y-2'], ['x-4']]);
  });

  void it('keeps every batch body under the size limit, whatever the number of calls waiting', async () => {
    assert.ok(MAX_BATCH_BODY_BYTES < MAX_REQUEST_BODY_BYTES);
    const { client, requests, settle } = scriptedKeyhold();
    const upstream = new CoalescingUpstream(client, { maxRequestsInFlight: 1 });
    // Decrypt items the size of the plugin's (a ~300-character ciphertext, a short context), then a few large ones.
    const ciphertexts = Array.from({ length: 600 }, (_, i) => `ok-${String(i).padStart(4, '0')}-${'c'.repeat(300)}`);
    const large = Array.from({ length: 3 }, (_, i) => `ok-large-${i}-${'L'.repeat(40_000)}`);
    let answered = 0;
    const calls = [...ciphertexts, ...large].map((c) => upstream.decrypt('k', c, { a: 'é' }).finally(() => (answered += 1)));
    for (let i = 0; i < 100 && answered < calls.length; i++) {
      await settle();
      for (const request of requests) {
        if (!request.released) {
          request.released = true;
          request.release();
        }
      }
    }
    await Promise.all(calls);
    const batches = requests.filter((r) => r.route === 'decrypt/batch');
    assert.ok(batches.length >= 4, `${batches.length} batches`);
    for (const batch of batches) {
      const body = Buffer.byteLength(JSON.stringify({ items: batch.items.map((ciphertext) => ({ ciphertext, context: { a: 'é' } })) }));
      assert.ok(body <= MAX_BATCH_BODY_BYTES, `a batch of ${batch.items.length} items is ${body} bytes`);
    }
    // Nothing lost, nothing twice, in arrival order.
    assert.deepEqual(requests.flatMap((r) => r.items), [...ciphertexts, ...large]);
  });
});
