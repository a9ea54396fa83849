import { Logger } from '@nestjs/common';
import { KeyUnwrapError, type VersionKey, importVersionKey } from '@keyhold/crypto-core';
import type { Key, KeyRepository } from '@keyhold/key-lifecycle';
import type { MasterKey } from '../seal/master-key';
import { MasterKeyVersionNotLiveError } from '../seal/master-key-ring';
import { keyVersionBinding } from './key-version-binding';

/** A key as the hot path needs it: its metadata and the unwrapped material of every version not destroyed. */
export interface LoadedKey {
  readonly key: Key;
  readonly versionKeys: ReadonlyMap<number, VersionKey>;
  /** Versions whose stored material failed its integrity check: unusable, while the others keep working. */
  readonly damagedVersions: ReadonlySet<number>;
}

/** How long, and how many, names found to be no key are remembered. */
const MISS_TTL_MS = 1000;
const MAX_MISSES = 1000;

interface CacheEntry {
  loaded: Promise<LoadedKey | null>;
  expiresAt: number;
}

export interface KeyringCacheOptions {
  /** How long an entry lives without a change notification; bounds staleness if a notification is lost. */
  ttlMs: number;
  /** How many keys stay unwrapped in memory at most; the oldest loaded go first. */
  maxKeys: number;
}

/**
 * Unwrapped key versions in memory, bounded and expiring, so that encrypt and decrypt never touch Postgres once
 * a key is warm. Every state change invalidates the key here and, through Postgres NOTIFY, in every instance.
 * Concurrent misses for one key share one load.
 */
export class KeyringCache {
  private readonly logger = new Logger(KeyringCache.name);
  private readonly entries = new Map<string, CacheEntry>();
  private readonly misses = new Map<string, CacheEntry>();

  constructor(
    private readonly repository: KeyRepository,
    private readonly masterKey: MasterKey,
    private readonly options: KeyringCacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get(name: string): Promise<LoadedKey | null> {
    const entry = this.entries.get(name) ?? this.misses.get(name);
    if (entry && entry.expiresAt > this.now()) return entry.loaded;
    return this.load(name);
  }

  invalidate(name: string): void {
    this.entries.delete(name);
    this.misses.delete(name);
  }

  /** After a lost notification channel nothing cached can be trusted to be current. */
  clear(): void {
    this.entries.clear();
    this.misses.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private load(name: string): Promise<LoadedKey | null> {
    const loaded = this.fetch(name);
    const entry: CacheEntry = { loaded, expiresAt: this.now() + this.options.ttlMs };
    this.entries.delete(name);
    this.misses.delete(name);
    this.entries.set(name, entry);
    loaded.then(
      (result) => {
        if (this.entries.get(name) !== entry) return;
        if (result !== null) return this.evictBeyond(this.entries, this.options.maxKeys);
        // A missing key is remembered briefly, apart: asking for names that do not exist (anyone granted a
        // pattern may) never pushes real keys out.
        this.entries.delete(name);
        entry.expiresAt = Math.min(entry.expiresAt, this.now() + MISS_TTL_MS);
        this.misses.set(name, entry);
        this.evictBeyond(this.misses, MAX_MISSES);
      },
      // A failed load (database down) must not stay cached.
      () => {
        if (this.entries.get(name) === entry) this.entries.delete(name);
      },
    );
    return loaded;
  }

  /** Drops the oldest loaded entries beyond `bound`. */
  private evictBeyond(entries: Map<string, CacheEntry>, bound: number): void {
    for (const name of entries.keys()) {
      if (entries.size <= bound) return;
      entries.delete(name);
    }
  }

  private async fetch(name: string): Promise<LoadedKey | null> {
    const key = await this.repository.findByName(name);
    if (!key) return null;
    // Rows can move to another master-key version while they are read (a rewrap, a retirement here): rows naming a
    // version this instance does not hold are read once more before anything is called damaged.
    return (await this.unwrapVersions(key, name, true)) ?? (await this.unwrapVersions(key, name, false));
  }

  /** The key's versions unwrapped; null if a row names a master-key version not held here and `retry` allows. */
  private async unwrapVersions(key: Key, name: string, retry: boolean): Promise<LoadedKey | null> {
    const material = await this.repository.loadMaterial(key.id);
    // Another instance may have rewrapped a row under a version whose NOTIFY has not reached this one yet.
    await this.masterKey.ensureVersions?.(material.map((entry) => entry.masterKeyVersion));
    const versionKeys = new Map<number, VersionKey>();
    const damagedVersions = new Set<number>();
    for (const entry of material) {
      try {
        const material = this.masterKey.unwrap(entry.wrapped, entry.masterKeyVersion, keyVersionBinding(key, entry.version));
        versionKeys.set(entry.version, importVersionKey(material));
        material.fill(0);
      } catch (error) {
        if (!(error instanceof KeyUnwrapError)) throw error;
        if (error instanceof MasterKeyVersionNotLiveError && retry) return null;
        damagedVersions.add(entry.version);
        this.logger.error({ msg: 'stored key material failed its integrity check', keyName: name, version: entry.version });
      }
    }
    return { key, versionKeys, damagedVersions };
  }
}
