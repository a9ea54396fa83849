import { type AuditCheckpoint, verifyCheckpointSignature } from './audit-checkpoint';
import { type AuditPrune, verifyPruneSignature } from './audit-prune';
import { type AuditRecord, GENESIS_HASH, chainHash } from './audit-record';

export type AuditBreakKind = 'altered' | 'deleted' | 'reordered' | 'inserted' | 'checkpoint-mismatch' | 'bad-signature';

export interface AuditBreak {
  kind: AuditBreakKind;
  /** The sequence number of the record (or checkpoint) where the chain first fails. */
  sequence: number;
  /** 0-based position of that record in the input (null for a checkpoint problem). */
  position: number | null;
  message: string;
}

export type AuditVerification =
  | {
      ok: true;
      records: number;
      checkpoints: number;
      firstSequence: number | null;
      lastSequence: number | null;
      lastHash: string | null;
      /** Highest sequence covered by a valid signed checkpoint (null: none in range). */
      lastCheckpointSequence: number | null;
      /** The records through this sequence were pruned by Keyhold (a valid signed prune); null: none given. */
      prunedThrough: number | null;
    }
  | { ok: false; records: number; checkpoints: number; broken: AuditBreak };

export interface VerifyOptions {
  /** Checkpoints to check against the records (their signatures need `publicKeyPem`). */
  checkpoints?: readonly AuditCheckpoint[];
  publicKeyPem?: string;
  /**
   * A range that does not start at sequence 1 cannot check its first record's link; give the record before it
   * here when known (its sequence and hash: from the database, or a signed checkpoint). The first record must then
   * be the next one and link to it. From sequence 1 the link to the genesis hash is always checked.
   */
  anchor?: AuditChainPoint;
  /**
   * The latest signed prune: the records through its sequence were removed by Keyhold. Its signature is checked
   * (it needs `publicKeyPem`), and unless `anchor` is given the range is anchored on it: the first record must be
   * the one after it and link to the hash it signed. A chain that starts later than 1 without one was cut.
   */
  prune?: AuditPrune;
  /** The chain head as the database reports it: a tail deleted after the last record is caught with it. */
  head?: AuditChainPoint;
  /** Where the first record stands in a larger input read in parts (positions are reported from it); default 0. */
  firstPosition?: number;
}

/** A point of the chain: a record's sequence and hash. */
export interface AuditChainPoint {
  sequence: number;
  hash: string;
}

/**
 * Walks the records in the order given and reports the FIRST broken link: a record whose content no longer
 * matches its hash (altered), a gap in the chain (deleted), a record out of place (reordered) or one that does
 * not belong to the chain at all (inserted); then checks every checkpoint's signature and that the chain
 * passes through the hash it signed (which catches a chain rewritten and re-hashed from some point on).
 *
 * Every checkpoint given must find its record (or the anchor) in the input: the caller passes the checkpoints of
 * the range it reads and, when it reads up to the chain head, every checkpoint after it. A validly signed
 * checkpoint past the last record is the proof that records were deleted from the tail (and the head rewound).
 */
export function verifyAuditChain(records: readonly AuditRecord[], options: VerifyOptions = {}): AuditVerification {
  const checkpoints = options.checkpoints ?? [];
  const offset = options.firstPosition ?? 0;
  const fail = (broken: AuditBreak): AuditVerification => ({
    ok: false,
    records: records.length,
    checkpoints: checkpoints.length,
    broken: { ...broken, position: broken.position === null ? null : broken.position + offset },
  });
  const successorOf = new Map<string, number>(); // prevHash -> position, to tell reordering from deletion
  const positionOfHash = new Map<string, number>();
  records.forEach((record, position) => {
    if (!successorOf.has(record.prevHash)) successorOf.set(record.prevHash, position);
    positionOfHash.set(record.hash, position);
  });

  const prune = options.prune ?? null;
  if (prune && (options.publicKeyPem === undefined || !verifyPruneSignature(options.publicKeyPem, prune))) {
    return fail({
      kind: 'bad-signature',
      sequence: prune.throughSequence,
      position: null,
      message: `the prune through #${prune.throughSequence} (${prune.time}) ${options.publicKeyPem === undefined ? 'cannot be checked without the audit public key' : 'has a signature that does not verify under the audit public key'}`,
    });
  }
  const anchor = options.anchor ?? (prune ? { sequence: prune.throughSequence, hash: prune.anchorHash } : null);
  let previous: AuditChainPoint | null = anchor;
  let lastRecord: AuditRecord | null = null;
  for (let position = 0; position < records.length; position += 1) {
    const record = records[position];
    const expectedSequence = previous ? previous.sequence + 1 : record.sequence;
    const expectedPrev = previous ? previous.hash : record.sequence === 1 ? GENESIS_HASH : record.prevHash;
    if (record.prevHash !== expectedPrev) {
      const linkedLater = (successorOf.get(expectedPrev) ?? -1) > position || (positionOfHash.get(record.prevHash) ?? -1) > position;
      const kind: AuditBreakKind = linkedLater ? 'reordered' : record.sequence > expectedSequence ? 'deleted' : 'inserted';
      const after = previous ? `#${previous.sequence}` : 'the start of the range';
      const message =
        kind === 'reordered'
          ? `record #${record.sequence} at position ${position + offset} does not follow ${after}: records are out of their chain order`
          : kind === 'deleted'
            ? `after ${after} the chain continues at #${record.sequence}: record(s) #${expectedSequence}..#${record.sequence - 1} were deleted`
            : `record #${record.sequence} at position ${position + offset} does not link to ${after}: it was inserted (or its predecessor was rewritten)`;
      return fail({ kind, sequence: kind === 'deleted' ? expectedSequence : record.sequence, position, message });
    }
    if (record.sequence !== expectedSequence) {
      return fail({
        kind: record.sequence > expectedSequence ? 'deleted' : 'reordered',
        sequence: record.sequence,
        position,
        message: `record #${record.sequence} links to #${previous?.sequence} but is numbered out of order (expected #${expectedSequence})`,
      });
    }
    let computed: string;
    try {
      computed = chainHash(record.prevHash, record);
    } catch {
      computed = '';
    }
    if (computed !== record.hash) {
      return fail({ kind: 'altered', sequence: record.sequence, position, message: `record #${record.sequence} was altered: its content no longer matches its hash` });
    }
    previous = record;
    lastRecord = record;
  }
  if (previous && options.head && options.head.sequence > previous.sequence) {
    return fail({
      kind: 'deleted',
      sequence: previous.sequence + 1,
      position: records.length,
      message: `the chain head is #${options.head.sequence} but the records end at #${previous.sequence}: the tail was deleted`,
    });
  }
  if (previous && options.head && options.head.sequence === previous.sequence && options.head.hash !== previous.hash) {
    return fail({ kind: 'altered', sequence: previous.sequence, position: lastRecord ? records.length - 1 : null, message: `the last record #${previous.sequence} does not match the chain head` });
  }
  if (previous && options.head && options.head.sequence < previous.sequence) {
    const head = options.head;
    const atHead = records.findIndex((record) => record.sequence === head.sequence);
    if (atHead >= 0 && records[atHead].hash !== head.hash) {
      return fail({ kind: 'altered', sequence: head.sequence, position: atHead, message: `record #${head.sequence} does not match the chain head` });
    }
    if (!lastRecord) {
      return fail({
        kind: 'deleted',
        sequence: head.sequence + 1,
        position: null,
        message: `the chain head #${head.sequence} is behind #${previous.sequence}, known to exist: records after #${head.sequence} were deleted and the head rewound`,
      });
    }
    return fail({
      kind: 'inserted',
      sequence: head.sequence + 1,
      position: atHead + 1,
      message: `the chain head is #${head.sequence} but records continue to #${previous.sequence}: they were added past the head (or the head was rewound)`,
    });
  }

  const bySequence = new Map<number, AuditChainPoint>(records.map((record) => [record.sequence, record]));
  if (anchor) bySequence.set(anchor.sequence, anchor);
  let lastCheckpointSequence: number | null = null;
  for (const checkpoint of [...checkpoints].sort((a, b) => a.sequence - b.sequence)) {
    if (options.publicKeyPem === undefined || !verifyCheckpointSignature(options.publicKeyPem, checkpoint)) {
      return fail({
        kind: 'bad-signature',
        sequence: checkpoint.sequence,
        position: null,
        message: `checkpoint #${checkpoint.sequence} (${checkpoint.time}) ${options.publicKeyPem === undefined ? 'cannot be checked without the audit public key' : 'has a signature that does not verify under the audit public key'}`,
      });
    }
    const record = bySequence.get(checkpoint.sequence);
    if (!record) {
      // Gaps between records were reported above: the record is missing from an end of the range.
      const first = records[0]?.sequence;
      if (anchor && checkpoint.sequence < anchor.sequence) continue; // before the range given
      if (!anchor && first !== undefined && checkpoint.sequence < first) {
        return fail({
          kind: 'deleted',
          sequence: checkpoint.sequence,
          position: 0,
          message: `records before #${first} are missing: a signed checkpoint covers sequence #${checkpoint.sequence}`,
        });
      }
      const present = lastRecord?.sequence ?? anchor?.sequence;
      return fail({
        kind: 'deleted',
        sequence: present === undefined ? checkpoint.sequence : present + 1,
        position: records.length,
        message: `records after ${present === undefined ? 'the start of the range' : `#${present}`} are missing: a signed checkpoint covers sequence #${checkpoint.sequence}`,
      });
    }
    if (record.hash !== checkpoint.headHash) {
      return fail({
        kind: 'checkpoint-mismatch',
        sequence: checkpoint.sequence,
        position: null,
        message: `the chain does not pass through checkpoint #${checkpoint.sequence} signed at ${checkpoint.time}: records up to #${checkpoint.sequence}${lastCheckpointSequence ? ` (after the good checkpoint #${lastCheckpointSequence})` : ''} were rewritten and re-hashed`,
      });
    }
    lastCheckpointSequence = checkpoint.sequence;
  }
  return {
    ok: true,
    records: records.length,
    checkpoints: checkpoints.length,
    firstSequence: records[0]?.sequence ?? null,
    lastSequence: lastRecord?.sequence ?? null,
    lastHash: lastRecord?.hash ?? null,
    lastCheckpointSequence,
    prunedThrough: prune?.throughSequence ?? null,
  };
}

export interface PagedVerifyOptions extends Omit<VerifyOptions, 'checkpoints'> {
  /**
   * The checkpoints: a list (in any order), or a stream in ascending sequence order (read as the pages need them,
   * so that they are not held all at once either; one out of order is reported as `reordered`).
   */
  checkpoints?: readonly AuditCheckpoint[] | AsyncIterable<AuditCheckpoint>;
  /** Called with each page once it verified (before the next is checked); a rejection stops the verification. */
  onPage?: (records: readonly AuditRecord[]) => void | Promise<void>;
}

/**
 * `verifyAuditChain` over records that arrive in pages (read from a database or a file), holding at most two pages
 * at a time: a chain of any length verifies in bounded memory. Each page is anchored on the last record of the one
 * before; the checkpoints go with the page that holds their record (those past the last record, with the head,
 * with the last page). The result is the one the whole chain would give, with one difference: a record moved
 * across a page boundary is told apart from a deleted or inserted one only within its page, so the kind of such a
 * break may read `deleted` or `inserted` where the whole chain says `reordered` (at the same position). A failure
 * counts the records and checkpoints read up to it, not the whole input.
 */
export async function verifyAuditChainInPages(pages: AsyncIterable<readonly AuditRecord[]>, options: PagedVerifyOptions = {}): Promise<AuditVerification> {
  const checkpoints = checkpointStream(options.checkpoints ?? []);
  const iterator = pages[Symbol.asyncIterator]();
  let records = 0;
  let checkpointsChecked = 0;
  let firstSequence: number | null = null;
  let lastPoint: AuditChainPoint | null = null;
  let lastCheckpointSequence: number | null = null;
  /** The record at the head's sequence when an earlier page held it (a head behind the records is checked against it). */
  let atHead: { record: AuditRecord; position: number } | null = null;
  let current = await iterator.next();
  for (;;) {
    const page = current.done ? [] : current.value;
    const following = current.done ? current : await iterator.next();
    const final = following.done === true;
    if (page.length === 0 && !final) {
      current = following;
      continue;
    }
    const taken = await checkpoints.through(final ? null : page[page.length - 1].sequence);
    if ('outOfOrder' in taken) {
      const { outOfOrder, after } = taken;
      return {
        ok: false,
        records,
        checkpoints: checkpointsChecked,
        broken: { kind: 'reordered', sequence: outOfOrder.sequence, position: null, message: `checkpoint #${outOfOrder.sequence} comes after checkpoint #${after}: the checkpoints are out of their order` },
      };
    }
    const result = verifyAuditChain(page, {
      checkpoints: taken.checkpoints,
      publicKeyPem: options.publicKeyPem,
      ...(lastPoint ? { anchor: lastPoint } : { anchor: options.anchor, prune: options.prune }),
      head: final ? options.head : undefined,
      firstPosition: records,
    });
    if (!result.ok) {
      let { broken } = result;
      const head = options.head;
      // The head behind the records, its record in an earlier page: what the whole chain reports of it.
      if (final && head && atHead && broken.kind === 'inserted' && broken.sequence === head.sequence + 1) {
        broken =
          atHead.record.hash === head.hash
            ? { ...broken, position: atHead.position + 1 }
            : { kind: 'altered', sequence: head.sequence, position: atHead.position, message: `record #${head.sequence} does not match the chain head` };
      }
      return { ok: false, records: records + result.records, checkpoints: checkpointsChecked + result.checkpoints, broken };
    }
    const headInPage = options.head ? page.findIndex((record) => record.sequence === options.head?.sequence) : -1;
    if (headInPage >= 0) atHead = { record: page[headInPage], position: records + headInPage };
    records += result.records;
    checkpointsChecked += result.checkpoints;
    firstSequence ??= result.firstSequence;
    if (result.lastSequence !== null && result.lastHash !== null) lastPoint = { sequence: result.lastSequence, hash: result.lastHash };
    lastCheckpointSequence = result.lastCheckpointSequence ?? lastCheckpointSequence;
    if (page.length > 0) await options.onPage?.(page);
    if (final) {
      return {
        ok: true,
        records,
        checkpoints: checkpointsChecked,
        firstSequence,
        lastSequence: lastPoint?.sequence ?? null,
        lastHash: lastPoint?.hash ?? null,
        lastCheckpointSequence,
        prunedThrough: options.prune?.throughSequence ?? null,
      };
    }
    current = following;
  }
}

/** Checkpoints handed out in sequence order, up to a sequence at a time, from a list or an ascending stream. */
function checkpointStream(source: readonly AuditCheckpoint[] | AsyncIterable<AuditCheckpoint>) {
  const ordered: AsyncIterable<AuditCheckpoint> = Symbol.asyncIterator in source
    ? (source as AsyncIterable<AuditCheckpoint>)
    : (async function* () {
        yield* [...(source as readonly AuditCheckpoint[])].sort((a, b) => a.sequence - b.sequence);
      })();
  const iterator = ordered[Symbol.asyncIterator]();
  let pending: AuditCheckpoint | null = null;
  let exhausted = false;
  let previous: number | null = null;
  return {
    /** The next checkpoints up to `sequence` (null: all the rest), or the first one out of order. */
    async through(sequence: number | null): Promise<{ checkpoints: AuditCheckpoint[] } | { outOfOrder: AuditCheckpoint; after: number }> {
      const checkpoints: AuditCheckpoint[] = [];
      for (;;) {
        if (!pending && !exhausted) {
          const next = await iterator.next();
          if (next.done) exhausted = true;
          else {
            if (previous !== null && next.value.sequence < previous) return { outOfOrder: next.value, after: previous };
            previous = next.value.sequence;
            pending = next.value;
          }
        }
        if (!pending || (sequence !== null && pending.sequence > sequence)) return { checkpoints };
        checkpoints.push(pending);
        pending = null;
      }
    },
  };
}

