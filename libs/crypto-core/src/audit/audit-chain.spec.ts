import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateEd25519KeyPair, publicKeyFingerprint } from '../ed25519';
import { type AuditCheckpoint, checkpointBytes, signCheckpoint, verifyCheckpointSignature } from './audit-checkpoint';
import { type AuditEntry, type AuditRecord, GENESIS_HASH, canonicalRecordBytes, chainHash, chainRecords } from './audit-record';
import { verifyAuditChain } from './audit-verifier';

// Compiled to dist/audit/audit-chain.spec.js: the vectors sit in ../../test-vectors from there.
const vectors = JSON.parse(readFileSync(join(__dirname, '..', '..', 'test-vectors', 'audit-chain-v1.json'), 'utf8')) as {
  ed25519: { privateKeyPkcs8Hex: string; publicKeyPem: string; fingerprint: string };
  records: Array<{ record: AuditRecord; canonical: string }>;
  checkpoint: { checkpoint: AuditCheckpoint; checkpointCanonical: string };
};
const vectorRecords = vectors.records.map((entry) => entry.record);

function entry(i: number): AuditEntry {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    plane: 'service',
    actor: 'spiffe://test/app',
    operation: 'encrypt',
    keyName: 'k',
    keyVersion: 1,
    outcome: 'success',
    errorCode: null,
    requestId: `r-${i}`,
    sourceAddress: '127.0.0.1',
    contextHmac: null,
  };
}
const chain = (n: number) => chainRecords(0, GENESIS_HASH, Array.from({ length: n }, (_, i) => entry(i)));

describe('audit chain: canonical encoding and hashes (test-vectors/audit-chain-v1.json)', () => {
  it('encodes every vector record to its documented canonical bytes and hash', () => {
    let prev = GENESIS_HASH;
    for (const { record, canonical } of vectors.records) {
      assert.equal(canonicalRecordBytes(record).toString('utf8'), canonical);
      assert.equal(record.prevHash, prev);
      assert.equal(chainHash(prev, record), record.hash);
      prev = record.hash;
    }
  });

  it('chainRecords numbers from the head and links each record to the one before', () => {
    const first = chainRecords(0, GENESIS_HASH, [entry(0), entry(1)]);
    const more = chainRecords(2, first[1].hash, [entry(2)]);
    assert.deepEqual([...first, ...more].map((r) => r.sequence), [1, 2, 3]);
    assert.equal(more[0].prevHash, first[1].hash);
    assert.equal(verifyAuditChain([...first, ...more]).ok, true);
  });

  it('the vector checkpoint verifies under the vector public key, and its signature is the documented one', () => {
    const { checkpoint, checkpointCanonical } = vectors.checkpoint;
    assert.equal(checkpointBytes(checkpoint).toString('utf8'), checkpointCanonical);
    assert.equal(verifyCheckpointSignature(vectors.ed25519.publicKeyPem, checkpoint), true);
    assert.equal(publicKeyFingerprint(vectors.ed25519.publicKeyPem), vectors.ed25519.fingerprint);
    // Ed25519 is deterministic: signing again gives the same bytes.
    const again = signCheckpoint(Buffer.from(vectors.ed25519.privateKeyPkcs8Hex, 'hex'), checkpoint);
    assert.equal(again.signature, checkpoint.signature);
    const result = verifyAuditChain(vectorRecords, { checkpoints: [checkpoint], publicKeyPem: vectors.ed25519.publicKeyPem });
    assert.deepEqual(result.ok && [result.records, result.lastCheckpointSequence], [5, 5]);
  });
});

describe('audit verifier: the first broken link', () => {
  it('an altered field', () => {
    const records = chain(6);
    records[3] = { ...records[3], operation: 'decrypt' };
    const result = verifyAuditChain(records);
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && [result.broken.kind, result.broken.sequence], ['altered', 4]);
  });

  it('a deleted record, in the middle and at the tail (with the head)', () => {
    const records = chain(6);
    const middle = verifyAuditChain([...records.slice(0, 2), ...records.slice(3)]);
    assert.deepEqual(!middle.ok && [middle.broken.kind, middle.broken.sequence], ['deleted', 3]);
    const tail = verifyAuditChain(records.slice(0, 5), { head: { sequence: 6, hash: records[5].hash } });
    assert.deepEqual(!tail.ok && [tail.broken.kind, tail.broken.sequence], ['deleted', 6]);
  });

  it('reordered records (swapped, or their sequence numbers swapped)', () => {
    const records = chain(6);
    const swapped = [records[0], records[1], records[3], records[2], records[4], records[5]];
    const result = verifyAuditChain(swapped);
    assert.deepEqual(!result.ok && [result.broken.kind, result.broken.position], ['reordered', 2]);
    const renumbered = [records[0], records[1], { ...records[3], sequence: 3 }, { ...records[2], sequence: 4 }, records[4], records[5]];
    const again = verifyAuditChain(renumbered);
    assert.deepEqual(!again.ok && [again.broken.kind, again.broken.sequence], ['reordered', 3]);
  });

  it('an inserted record', () => {
    const records = chain(4);
    const forged: AuditRecord = { ...records[3], sequence: 5, prevHash: 'ab'.repeat(32) };
    forged.hash = chainHash(forged.prevHash, forged);
    const result = verifyAuditChain([...records, forged]);
    assert.deepEqual(!result.ok && [result.broken.kind, result.broken.sequence], ['inserted', 5]);
  });

  it('a chain rewritten and re-hashed is caught by the signed checkpoint; a forged signature too', () => {
    const keys = generateEd25519KeyPair();
    const records = chain(6);
    const fingerprint = publicKeyFingerprint(keys.publicKeyPem);
    const checkpoint = signCheckpoint(keys.privateKeyDer, { sequence: 6, headHash: records[5].hash, time: records[5].time, keyFingerprint: fingerprint });
    const rewritten = chainRecords(0, GENESIS_HASH, records.map((r, i) => ({ ...r, operation: i === 2 ? 'datakey' : r.operation })));
    assert.equal(verifyAuditChain(rewritten).ok, true, 'the chain alone cannot tell');
    const result = verifyAuditChain(rewritten, { checkpoints: [checkpoint], publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!result.ok && result.broken.kind, 'checkpoint-mismatch');
    const other = generateEd25519KeyPair();
    const forged = verifyAuditChain(records, { checkpoints: [checkpoint], publicKeyPem: other.publicKeyPem });
    assert.deepEqual(!forged.ok && forged.broken.kind, 'bad-signature');
    assert.equal(verifyAuditChain(records, { checkpoints: [checkpoint], publicKeyPem: keys.publicKeyPem }).ok, true);
  });

  it('a range that does not start at 1 is checked from its anchor', () => {
    const records = chain(6);
    assert.equal(verifyAuditChain(records.slice(2)).ok, true);
    const anchored = verifyAuditChain(records.slice(2), { anchorHash: records[0].hash });
    assert.deepEqual(!anchored.ok && anchored.broken.sequence, 3);
  });
});
