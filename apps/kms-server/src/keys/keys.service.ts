import { ApiError, KEY_NAME_PATTERN, type CreateKeyRequest, type KeyListView, type KeyUsageHistoryView, type KeyView, type UpdateKeyRequest } from '@keyhold/contracts';
import { generateKeyMaterial, randomUuid } from '@keyhold/crypto-core';
import {
  type Clock,
  type Key,
  type WrappedVersionMaterial,
  cancelKeyDestruction,
  cancelVersionDestruction,
  createKey,
  destroyKey,
  destroyKeyImmediately,
  destroyVersion,
  destroyVersionImmediately,
  disableKey,
  disableVersion,
  enableKey,
  enableVersion,
  isKeyDestructionDue,
  isRotationDue,
  rotateKey,
  scheduleKeyDestruction,
  scheduleVersionDestruction,
  shortenDestructionWindow,
  updateKey,
  versionsDueForDestruction,
} from '@keyhold/key-lifecycle';
import type { KeyringCache } from '../keyring/keyring-cache';
import { keyVersionBinding } from '../keyring/key-version-binding';
import type { UsageRecorder } from '../keyring/usage-recorder';
import type { KeyWithUsage, TypeormKeyRepository } from '../persistence/typeorm-key.repository';
import { type MasterKey, wrapForStorage } from '../seal/master-key';
import type { AuditScope } from '../audit/audit-scope';
import { toKeyView } from './key.mapper';
import { SYSTEM_OPERATIONS } from '../audit/audit-operations';

const DEFAULT_PAGE_SIZE = 100;

/** What the scheduler did to one key in one pass. */
export interface DueWorkResult {
  rotated: boolean;
  destroyedVersions: number[];
  keyDestroyed: boolean;
}

/**
 * The key lifecycle as an application service: each change runs the domain decision under the key's row
 * lock, persists it, and drops the key from every instance's cache, all before answering.
 */
export class KeysService {
  constructor(
    private readonly repository: TypeormKeyRepository,
    private readonly masterKey: MasterKey,
    private readonly cache: KeyringCache,
    private readonly usage: UsageRecorder,
    private readonly clock: Clock,
    /** Records changes made without a request's scope (the scheduler's): `system:<job>`. */
    private readonly systemAudit: AuditScope,
  ) {}

  async create(request: CreateKeyRequest, audit: AuditScope = this.systemAudit): Promise<KeyView> {
    const key = createKey({ ...request, id: randomUuid() }, this.clock.now());
    await this.repository.insert(key, this.newMaterial(key, [1]), (manager) =>
      audit.record(manager, { operation: 'keys.create', keyName: key.name, keyVersion: 1 }),
    );
    this.cache.invalidate(key.name);
    return this.get(key.name);
  }

  async get(name: string): Promise<KeyView> {
    const found = await this.repository.findWithUsage(name);
    if (!found) throw keyNotFound(name);
    return this.view(found);
  }

  /** Encryptions per version per UTC day over the last `days` days (today included); counted usage is flushed first. */
  async usageHistory(name: string, days: number): Promise<KeyUsageHistoryView> {
    const key = await this.repository.findByName(name);
    if (!key) throw keyNotFound(name);
    await this.usage.flush();
    const today = Date.UTC(...utcDate(this.clock.now()));
    const since = new Date(today - (days - 1) * 86_400_000).toISOString().slice(0, 10);
    return { keyName: name, since, days: await this.repository.usageHistory(key.id, since) };
  }

  /** A page in name order; `canSee` hides keys the caller has no grant to read, without breaking the cursor. */
  async list(options: { limit?: number; cursor?: string }, canSee: (name: string) => boolean): Promise<KeyListView> {
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    const afterName = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const page = await this.repository.listWithUsage(limit + 1, afterName);
    const hasMore = page.length > limit;
    const shown = page.slice(0, limit);
    return {
      keys: shown.filter((entry) => canSee(entry.key.name)).map((entry) => this.view(entry)),
      nextCursor: hasMore ? encodeCursor(shown[shown.length - 1].key.name) : null,
    };
  }

  update(name: string, request: UpdateKeyRequest, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.update', null, audit, (key, now) => updateKey(key, request, now));
  }

  rotate(name: string, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.rotate', null, audit, (key, now) => rotateKey(key, now));
  }

  disable(name: string, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.disable', null, audit, (key, now) => disableKey(key, now));
  }

  enable(name: string, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.enable', null, audit, (key, now) => enableKey(key, now));
  }

  scheduleDestruction(name: string, pendingDays?: number, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.schedule-destruction', null, audit, (key, now) => scheduleKeyDestruction(key, pendingDays, now));
  }

  cancelDestruction(name: string, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.cancel-destruction', null, audit, (key, now) => cancelKeyDestruction(key, now));
  }

  disableVersion(name: string, version: number, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.version.disable', version, audit, (key, now) => disableVersion(key, version, now));
  }

  enableVersion(name: string, version: number, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.version.enable', version, audit, (key, now) => enableVersion(key, version, now));
  }

  scheduleVersionDestruction(name: string, version: number, pendingDays?: number, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.version.schedule-destruction', version, audit, (key, now) =>
      scheduleVersionDestruction(key, version, pendingDays, now),
    );
  }

  cancelVersionDestruction(name: string, version: number, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.version.cancel-destruction', version, audit, (key, now) => cancelVersionDestruction(key, version, now));
  }

  /** Crypto-shreds the key now, skipping the window: only an approved operation calls this. */
  destroyNow(name: string, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.destroy-now', null, audit, (key, now) => destroyKeyImmediately(key, now));
  }

  /** Crypto-shreds one version now, skipping the window: only an approved operation calls this. */
  destroyVersionNow(name: string, version: number, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.version.destroy-now', version, audit, (key, now) => destroyVersionImmediately(key, version, now));
  }

  /** Brings a scheduled destruction forward; only an approved operation calls this. */
  shortenDestructionWindow(name: string, version: number | null, destroyAt: Date, audit?: AuditScope): Promise<KeyView> {
    return this.change(name, 'keys.shorten-destruction-window', version, audit, (key, now) => shortenDestructionWindow(key, version, destroyAt, now));
  }

  /**
   * Runs whatever is due for one key: crypto-shredding of versions (or the whole key) whose window has ended,
   * then an automatic rotation. Re-checks under the lock, so two schedulers can never do the same work twice.
   */
  async runDueWork(name: string): Promise<DueWorkResult | null> {
    const result = await this.repository.withLockedKey(name, async (key, tx, _usage, manager) => {
      const now = this.clock.now();
      const outcome: DueWorkResult = { rotated: false, destroyedVersions: [], keyDestroyed: false };
      let next: Key = key;
      if (isKeyDestructionDue(key, now)) {
        next = destroyKey(key, now);
        outcome.keyDestroyed = true;
        outcome.destroyedVersions = key.versions.filter((v) => v.state !== 'destroyed').map((v) => v.version);
      } else {
        for (const due of versionsDueForDestruction(key, now)) {
          next = destroyVersion(next, due.version, now);
          outcome.destroyedVersions.push(due.version);
        }
      }
      await tx.shredMaterial(outcome.destroyedVersions);
      let material: WrappedVersionMaterial[] = [];
      if (isRotationDue(next, now)) {
        next = rotateKey(next, now);
        material = this.newMaterial(next, [next.primaryVersion]);
        outcome.rotated = true;
      }
      if (next !== key) await tx.save(next, material);
      // One record per change, in this transaction: the scheduler is the actor.
      if (outcome.keyDestroyed) await this.systemAudit.record(manager, { operation: SYSTEM_OPERATIONS.destroyKey, keyName: name, keyVersion: null });
      else {
        for (const version of outcome.destroyedVersions) {
          await this.systemAudit.record(manager, { operation: SYSTEM_OPERATIONS.destroyKeyVersion, keyName: name, keyVersion: version });
        }
      }
      if (outcome.rotated) await this.systemAudit.record(manager, { operation: SYSTEM_OPERATIONS.rotateKey, keyName: name, keyVersion: next.primaryVersion });
      return outcome;
    });
    this.cache.invalidate(name);
    return result;
  }

  /**
   * Answers with the state this change committed, not whatever a concurrent change made of it since. The
   * audit record is written last in the same transaction: no change without its record, nor the reverse.
   */
  private async change(
    name: string,
    operation: string,
    version: number | null,
    audit: AuditScope = this.systemAudit,
    decide: (key: Key, now: Date) => Key,
  ): Promise<KeyView> {
    const committed = await this.repository.withLockedKey(name, async (key, tx, usage, manager) => {
      const next = decide(key, this.clock.now());
      const before = new Map(key.versions.map((v) => [v.version, v.state]));
      const added = next.versions.filter((v) => !before.has(v.version)).map((v) => v.version);
      // Any version this decision destroys loses its material in the same transaction.
      const destroyed = next.versions
        .filter((v) => v.state === 'destroyed' && before.has(v.version) && before.get(v.version) !== 'destroyed')
        .map((v) => v.version);
      await tx.shredMaterial(destroyed);
      await tx.save(next, this.newMaterial(next, added));
      await audit.record(manager, { operation, keyName: name, keyVersion: version ?? added[0] ?? null });
      return { key: next, usage: new Map(usage) };
    });
    if (!committed) throw keyNotFound(name);
    this.cache.invalidate(name);
    return this.view(committed);
  }

  private newMaterial(key: Key, versions: readonly number[]): WrappedVersionMaterial[] {
    return versions.map((version) => {
      const material = generateKeyMaterial(key.algorithm);
      try {
        return { version, ...wrapForStorage(this.masterKey, material, keyVersionBinding(key, version)) };
      } finally {
        material.fill(0);
      }
    });
  }

  private view({ key, usage }: KeyWithUsage): KeyView {
    return toKeyView(key, (version) => {
      const stored = usage.get(version) ?? { encryptions: 0, lastUsedAt: null };
      const pending = this.usage.pendingFor(key.id, version);
      const lastUsedAt =
        pending.lastUsedAt && (!stored.lastUsedAt || pending.lastUsedAt > stored.lastUsedAt)
          ? pending.lastUsedAt
          : stored.lastUsedAt;
      return { encryptions: stored.encryptions + pending.count, lastUsedAt };
    });
  }
}

export function keyNotFound(name: string): ApiError {
  return new ApiError('KEY_NOT_FOUND', `key '${name}' does not exist`);
}

function encodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!KEY_NAME_PATTERN.test(name) || encodeCursor(name) !== cursor) {
    throw new ApiError('VALIDATION_FAILED', 'cursor: not a cursor this server returned');
  }
  return name;
}

function utcDate(at: Date): [number, number, number] {
  return [at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()];
}
