import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateEd25519KeyPair, publicKeyFingerprint } from '../ed25519';
import { type AuditCheckpoint, checkpointBytes, signCheckpoint, verifyCheckpointSignature } from './audit-checkpoint';
import { AUDIT_RECORD_DOMAIN, type AuditEntry, type AuditRecord, GENESIS_HASH, canonicalRecordBytes, chainHash, chainRecords, chainRecordsAsRows } from './audit-record';
import { type AuditPrune, pruneBytes, signPrune, verifyPruneSignature } from './audit-prune';
import { type VerifyOptions, verifyAuditChain, verifyAuditChainInPages } from './audit-verifier';

// Compiled to dist/audit/audit-chain.spec.js: the vectors sit in ../../test-vectors from there.
const vectors = JSON.parse(readFileSync(join(__dirname, '..', '..', 'test-vectors', 'audit-chain-v1.json'), 'utf8')) as {
  ed25519: { privateKeyPkcs8Hex: string; publicKeyPem: string; fingerprint: string };
  records: Array<{ record: AuditRecord; canonical: string }>;
  checkpoint: { checkpoint: AuditCheckpoint; checkpointCanonical: string };
  prune: { prune: AuditPrune; pruneCanonical: string };
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

  it('chainRecordsAsRows chains alike and gives each record as a row: its canonical encoding, then prevHash and hash', () => {
    const entries: AuditEntry[] = [entry(1), { ...entry(2), actor: 'quote " and \\ and \u2028 and 🔑', keyName: null, keyVersion: null, contextHmac: 'a'.repeat(64) }];
    const { records, rows } = chainRecordsAsRows(7, vectorRecords[0].hash, entries);
    assert.deepEqual(records, chainRecords(7, vectorRecords[0].hash, entries));
    const parsed = JSON.parse(rows) as unknown[][];
    assert.deepEqual(
      parsed,
      records.map((r) => [AUDIT_RECORD_DOMAIN, r.sequence, r.time, r.plane, r.actor, r.operation, r.keyName, r.keyVersion, r.outcome, r.errorCode, r.requestId, r.sourceAddress, r.contextHmac, r.prevHash, r.hash]),
    );
    assert.equal(JSON.stringify(parsed[1].slice(0, 13)), canonicalRecordBytes(records[1]).toString('utf8'), 'the row starts with the very text hashed');
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
    assert.equal(verifyAuditChain(records.slice(2), { anchor: { sequence: 2, hash: records[1].hash } }).ok, true);
    const anchored = verifyAuditChain(records.slice(2), { anchor: { sequence: 2, hash: records[0].hash } });
    assert.deepEqual(!anchored.ok && anchored.broken.sequence, 3);
    // The first records of the range deleted: the anchor knows where the range starts.
    const headless = verifyAuditChain(records.slice(3), { anchor: { sequence: 2, hash: records[1].hash } });
    assert.deepEqual(!headless.ok && [headless.broken.kind, headless.broken.sequence], ['deleted', 3]);
    // From sequence 1 the anchor is the genesis.
    assert.equal(verifyAuditChain(records, { anchor: { sequence: 0, hash: GENESIS_HASH } }).ok, true);
  });
});

describe('audit verifier: signed checkpoints without their records (truncation)', () => {
  const keys = generateEd25519KeyPair();
  const fingerprint = publicKeyFingerprint(keys.publicKeyPem);
  const signAt = (records: readonly AuditRecord[], sequence: number) =>
    signCheckpoint(keys.privateKeyDer, { sequence, headHash: records[sequence - 1].hash, time: records[sequence - 1].time, keyFingerprint: fingerprint });

  it('a tail deleted and the head rewound: the checkpoint past the last record names the missing range', () => {
    const records = chain(8);
    const checkpoints = [signAt(records, 3), signAt(records, 8)];
    const kept = records.slice(0, 5);
    // The head rewound to the last record kept: the chain and the head agree, only the checkpoint at #8 tells.
    const options = { checkpoints, publicKeyPem: keys.publicKeyPem, head: { sequence: 5, hash: kept[4].hash }, anchor: { sequence: 0, hash: GENESIS_HASH } };
    assert.equal(verifyAuditChain(kept, { ...options, checkpoints: [checkpoints[0]] }).ok, true, 'without the later checkpoint nothing shows');
    const result = verifyAuditChain(kept, options);
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && [result.broken.kind, result.broken.sequence, result.broken.position], ['deleted', 6, 5]);
    assert.equal(!result.ok && result.broken.message, 'records after #5 are missing: a signed checkpoint covers sequence #8');
    // Every record deleted and the head rewound to nothing: the same.
    const empty = verifyAuditChain([], { ...options, head: { sequence: 0, hash: GENESIS_HASH } });
    assert.deepEqual(!empty.ok && [empty.broken.kind, empty.broken.sequence, empty.broken.message], ['deleted', 1, 'records after #0 are missing: a signed checkpoint covers sequence #3']);
  });

  it('an export cut short (no head, no anchor): a checkpoint past its last record, or before its first, fails', () => {
    const records = chain(8);
    const checkpoints = [signAt(records, 3), signAt(records, 8)];
    assert.equal(verifyAuditChain(records, { checkpoints, publicKeyPem: keys.publicKeyPem }).ok, true);
    const tail = verifyAuditChain(records.slice(0, 6), { checkpoints, publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!tail.ok && [tail.broken.kind, tail.broken.sequence], ['deleted', 7]);
    const start = verifyAuditChain(records.slice(4), { checkpoints, publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!start.ok && [start.broken.kind, start.broken.sequence, start.broken.message], ['deleted', 3, 'records before #5 are missing: a signed checkpoint covers sequence #3']);
    const none = verifyAuditChain([], { checkpoints, publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!none.ok && [none.broken.kind, none.broken.message], ['deleted', 'records after the start of the range are missing: a signed checkpoint covers sequence #3']);
  });

  it('a gap inside the range is reported once, as the gap; a checkpoint before the anchor is outside the range', () => {
    const records = chain(8);
    const checkpoints = [signAt(records, 4), signAt(records, 8)];
    const gap = verifyAuditChain([...records.slice(0, 3), ...records.slice(4)], { checkpoints, publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!gap.ok && [gap.broken.kind, gap.broken.sequence], ['deleted', 4]);
    const ranged = verifyAuditChain(records.slice(5), { checkpoints, publicKeyPem: keys.publicKeyPem, anchor: { sequence: 5, hash: records[4].hash } });
    assert.deepEqual(ranged.ok && [ranged.records, ranged.lastCheckpointSequence], [3, 8]);
    // A checkpoint at the anchor is checked against it.
    const atAnchor = verifyAuditChain(records.slice(4), { checkpoints, publicKeyPem: keys.publicKeyPem, anchor: { sequence: 4, hash: records[3].hash } });
    assert.equal(atAnchor.ok, true);
    const wrongAnchor = verifyAuditChain([], { checkpoints: [checkpoints[0]], publicKeyPem: keys.publicKeyPem, anchor: { sequence: 4, hash: records[2].hash } });
    assert.deepEqual(!wrongAnchor.ok && wrongAnchor.broken.kind, 'checkpoint-mismatch');
    // A forged checkpoint past the end is a bad signature, not a truncation.
    const forged = { ...checkpoints[1], sequence: 9 };
    const bad = verifyAuditChain(records, { checkpoints: [forged], publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!bad.ok && bad.broken.kind, 'bad-signature');
  });

  it('the head against the records: behind them, or behind the anchor', () => {
    const records = chain(6);
    const behind = verifyAuditChain(records, { head: { sequence: 4, hash: records[3].hash } });
    assert.deepEqual(!behind.ok && [behind.broken.kind, behind.broken.sequence], ['inserted', 5]);
    const otherHash = verifyAuditChain(records, { head: { sequence: 4, hash: records[2].hash } });
    assert.deepEqual(!otherHash.ok && [otherHash.broken.kind, otherHash.broken.sequence], ['altered', 4]);
    const rewound = verifyAuditChain([], { anchor: { sequence: 6, hash: records[5].hash }, head: { sequence: 4, hash: records[3].hash } });
    assert.deepEqual(!rewound.ok && [rewound.broken.kind, rewound.broken.sequence], ['deleted', 5]);
    // A segment from a checkpoint to the head, as the checkpointer checks it before signing.
    assert.equal(verifyAuditChain(records.slice(3), { anchor: { sequence: 3, hash: records[2].hash }, head: { sequence: 6, hash: records[5].hash } }).ok, true);
    const shortOfHead = verifyAuditChain([], { anchor: { sequence: 3, hash: records[2].hash }, head: { sequence: 6, hash: records[5].hash } });
    assert.deepEqual(!shortOfHead.ok && [shortOfHead.broken.kind, shortOfHead.broken.sequence], ['deleted', 4]);
  });
});

describe('audit verifier: a chain pruned by Keyhold starts at a signed prune', () => {
  it('an independent checker (Python, standard library only) agrees with the vectors', { skip: !existsSync('/usr/bin/python3') && 'no /usr/bin/python3' }, () => {
    const checked = spawnSync('/usr/bin/python3', [join(__dirname, '..', '..', 'test-vectors', 'verify-audit-chain-v1.py')], { encoding: 'utf8' });
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(checked.stdout, /5 records and the checkpoint and prune canonical forms agree/);
  });

  it('the vector prune has its documented canonical form and signature, under the vector key', () => {
    const { prune, pruneCanonical } = vectors.prune;
    assert.equal(pruneBytes(prune).toString('utf8'), pruneCanonical);
    assert.equal(verifyPruneSignature(vectors.ed25519.publicKeyPem, prune), true);
    assert.deepEqual(signPrune(Buffer.from(vectors.ed25519.privateKeyPkcs8Hex, 'hex'), prune), prune);
  });


  const keys = generateEd25519KeyPair();
  const fingerprint = publicKeyFingerprint(keys.publicKeyPem);
  const records = chain(10);
  const pruneAt = (sequence: number, hash = records[sequence - 1].hash): AuditPrune =>
    signPrune(keys.privateKeyDer, { throughSequence: sequence, anchorHash: hash, time: '2026-02-01T00:00:00.000Z', keyFingerprint: fingerprint });
  const checkpointAt = (sequence: number) =>
    signCheckpoint(keys.privateKeyDer, { sequence, headHash: records[sequence - 1].hash, time: records[sequence - 1].time, keyFingerprint: fingerprint });
  const kept = records.slice(4);

  it('the records after the prune verify, anchored on the hash it signed, with the checkpoint it pruned through', () => {
    const result = verifyAuditChain(kept, { prune: pruneAt(4), checkpoints: [checkpointAt(4), checkpointAt(8)], publicKeyPem: keys.publicKeyPem, head: { sequence: 10, hash: records[9].hash } });
    assert.deepEqual(result.ok && [result.records, result.firstSequence, result.prunedThrough, result.lastCheckpointSequence], [6, 5, 4, 8]);
    assert.equal(verifyPruneSignature(keys.publicKeyPem, pruneAt(4)), true);
    assert.equal(pruneBytes(pruneAt(4)).toString('utf8'), `["keyhold.audit.prune.v1",4,"${records[3].hash}","2026-02-01T00:00:00.000Z","${fingerprint}"]`);
  });

  it('without the prune the same start is records deleted; records deleted after it still show', () => {
    const cut = verifyAuditChain(kept, { anchor: { sequence: 0, hash: GENESIS_HASH } });
    assert.deepEqual(!cut.ok && [cut.broken.kind, cut.broken.sequence], ['deleted', 1]);
    const more = verifyAuditChain(records.slice(6), { prune: pruneAt(4), publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!more.ok && [more.broken.kind, more.broken.sequence], ['deleted', 5]);
    // An older prune left in place of the latest one does not cover the records deleted since.
    const older = verifyAuditChain(kept, { prune: pruneAt(2), publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!older.ok && [older.broken.kind, older.broken.sequence], ['deleted', 3]);
  });

  it('a forged or moved prune is a bad signature; a prune whose hash the records do not continue is caught', () => {
    const other = generateEd25519KeyPair();
    const forged = signPrune(other.privateKeyDer, { ...pruneAt(6), keyFingerprint: fingerprint });
    const bad = verifyAuditChain(records.slice(6), { prune: forged, publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!bad.ok && [bad.broken.kind, bad.broken.sequence], ['bad-signature', 6]);
    const moved = verifyAuditChain(records.slice(6), { prune: { ...pruneAt(4), throughSequence: 6, anchorHash: records[5].hash }, publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!moved.ok && moved.broken.kind, 'bad-signature');
    const unchecked = verifyAuditChain(kept, { prune: pruneAt(4) });
    assert.deepEqual(!unchecked.ok && unchecked.broken.kind, 'bad-signature');
    const otherHash = verifyAuditChain(kept, { prune: pruneAt(4, records[2].hash), publicKeyPem: keys.publicKeyPem });
    assert.deepEqual(!otherHash.ok && [otherHash.broken.kind, otherHash.broken.sequence], ['inserted', 5]);
  });

  it("a checkpoint's signature is not a prune's: the domains differ", () => {
    const checkpoint = checkpointAt(4);
    const asPrune: AuditPrune = { throughSequence: 4, anchorHash: checkpoint.headHash, time: checkpoint.time, keyFingerprint: fingerprint, signature: checkpoint.signature };
    assert.equal(verifyPruneSignature(keys.publicKeyPem, asPrune), false);
  });
});

describe('audit verifier in pages: the same result as the whole chain, in bounded memory', () => {
  const keys = generateEd25519KeyPair();
  const fingerprint = publicKeyFingerprint(keys.publicKeyPem);
  const records = chain(9);
  const signAt = (sequence: number, from: readonly AuditRecord[] = records) =>
    signCheckpoint(keys.privateKeyDer, { sequence, headHash: from[sequence - 1].hash, time: from[sequence - 1].time, keyFingerprint: fingerprint });
  const checkpoints = [signAt(3), signAt(6), signAt(9)];
  const publicKeyPem = keys.publicKeyPem;
  const altered = records.map((r, i) => (i === 4 ? { ...r, operation: 'decrypt' } : r));
  const rewritten = chainRecords(0, GENESIS_HASH, records.map((r, i) => ({ ...r, operation: i === 2 ? 'datakey' : r.operation })));
  const forgedPrune = signPrune(keys.privateKeyDer, { throughSequence: 3, anchorHash: records[2].hash, time: records[2].time, keyFingerprint: fingerprint });
  const scenarios: Array<[string, readonly AuditRecord[], VerifyOptions]> = [
    ['intact, with checkpoints and the head', records, { checkpoints, publicKeyPem, head: records[8] }],
    ['intact, no options', records, {}],
    ['empty, nothing known', [], {}],
    ['an altered record', altered, { checkpoints, publicKeyPem }],
    ['a deleted record', [...records.slice(0, 4), ...records.slice(5)], { checkpoints, publicKeyPem }],
    ['a deleted tail, head rewound', records.slice(0, 7), { checkpoints, publicKeyPem, head: records[6] }],
    ['a deleted tail, head kept', records.slice(0, 7), { publicKeyPem, head: records[8] }],
    ['the head behind the records', records, { head: records[3] }],
    ['the head behind the records, another hash', records, { head: { sequence: 4, hash: records[2].hash } }],
    ['rewritten and re-hashed', rewritten, { checkpoints, publicKeyPem }],
    ['a forged checkpoint', records, { checkpoints: [{ ...checkpoints[1], sequence: 7 }], publicKeyPem }],
    ['cut short at the start', records.slice(4), { checkpoints, publicKeyPem }],
    ['anchored', records.slice(3), { checkpoints, publicKeyPem, anchor: records[2] }],
    ['anchored on the wrong hash', records.slice(3), { anchor: { sequence: 3, hash: records[1].hash } }],
    ['after a prune', records.slice(3), { checkpoints, publicKeyPem, prune: forgedPrune }],
    ['after a prune, without it', records.slice(3), { checkpoints, publicKeyPem }],
    ['after a prune, records deleted after it', records.slice(4), { checkpoints, publicKeyPem, prune: forgedPrune }],
    ['a prune under another key', records.slice(3), { publicKeyPem: generateEd25519KeyPair().publicKeyPem, prune: forgedPrune }],
    ['an inserted record', [...records.slice(0, 5), { ...records[5], prevHash: 'ab'.repeat(32) }, ...records.slice(6)], {}],
  ];

  async function* inPages(all: readonly AuditRecord[], size: number) {
    for (let at = 0; at < all.length; at += size) yield all.slice(at, at + size);
  }
  async function* inOrder<T>(items: readonly T[]) {
    yield* items;
  }

  for (const [name, input, options] of scenarios) {
    it(name, async () => {
      const whole = verifyAuditChain(input, options);
      for (const [size, streamed] of [1, 2, 3, 4, 100].flatMap((size) => [[size, false], [size, true]] as const)) {
        const seen: number[] = [];
        // The checkpoints as a list, or streamed in sequence order as a database or a file hands them out.
        const checkpointsGiven = streamed ? inOrder([...(options.checkpoints ?? [])].sort((a, b) => a.sequence - b.sequence)) : options.checkpoints;
        const paged = await verifyAuditChainInPages(inPages(input, size), { ...options, checkpoints: checkpointsGiven, onPage: (page) => void seen.push(page.length) });
        // A failure counts what was read up to it (the pages after it are never read).
        if (whole.ok) assert.deepEqual(paged, whole, `pages of ${size}${streamed ? ', checkpoints streamed' : ''}`);
        else assert.deepEqual(!paged.ok && paged.broken, whole.broken, `pages of ${size}${streamed ? ', checkpoints streamed' : ''}`);
        if (whole.ok) assert.equal(seen.reduce((a, b) => a + b, 0), input.length, 'every page is handed on once verified');
      }
    });
  }

  it('a record moved across a page boundary is still the first broken link, by sequence', async () => {
    const swapped = [records[0], records[1], records[3], records[2], ...records.slice(4)];
    const whole = verifyAuditChain(swapped);
    const paged = await verifyAuditChainInPages(inPages(swapped, 3));
    assert.deepEqual(!whole.ok && [whole.broken.kind, whole.broken.position], ['reordered', 2]);
    assert.deepEqual(!paged.ok && [paged.broken.kind, paged.broken.position], ['deleted', 2]);
  });

  it('checkpoints streamed out of their order are reported, not sorted', async () => {
    const result = await verifyAuditChainInPages(inPages(records, 4), { checkpoints: inOrder([checkpoints[1], checkpoints[0], checkpoints[2]]), publicKeyPem });
    assert.deepEqual(!result.ok && [result.broken.kind, result.broken.sequence, result.broken.message], ['reordered', 3, 'checkpoint #3 comes after checkpoint #6: the checkpoints are out of their order']);
  });

  it('a page handler that fails stops the verification with its error', async () => {
    await assert.rejects(
      verifyAuditChainInPages(inPages(records, 4), {
        onPage: () => {
          throw new Error('archive full');
        },
      }),
      /archive full/,
    );
  });
});
