import { type KeyMaterialBinding, KeyUnwrapError } from '@keyhold/crypto-core';
import { InMemoryMasterKey, type MasterKey, type MasterKeyProtection } from './master-key';
import { type SealState, sealedError } from './seal-state';

export type MasterKeyVersionState = 'active' | 'retiring' | 'retired';

/** A row of keyhold_master_key_versions as the keyring needs it. */
export interface MasterKeyVersionRow {
  version: number;
  /** Sealed under the root; null for the version served by the root itself, and once retired. */
  sealedKey: Buffer | null;
  state: MasterKeyVersionState;
}

export class MasterKeyRootMismatchError extends Error {
  constructor(version: number) {
    super(
      `master key version ${version} cannot be opened with this root key: the root was rekeyed (start with the new key file, shares or token) or the row was altered`,
    );
    this.name = 'MasterKeyRootMismatchError';
  }
}

/** What binds a version's sealed key to its version number: swapping two rows' bytes fails to open. */
export const versionKeyLabel = (version: number): string => `master-key-version:${version}`;

/** The live versions opened with the root: what every wrap and unwrap uses between two reloads. */
export interface OpenedKeyring {
  readonly root: MasterKey;
  /** The version new material is wrapped under. */
  readonly current: number;
  readonly keys: ReadonlyMap<number, MasterKey>;
}

/**
 * Opens every live version with the root. The root's own version (1) is served by the root itself while it
 * is live; once retired, the root only seals the other versions' keys. Pure apart from the unsealing.
 */
export function openKeyring(root: MasterKey, rows: readonly MasterKeyVersionRow[]): OpenedKeyring {
  const keys = new Map<number, MasterKey>();
  let current: number | null = null;
  for (const row of rows) {
    if (row.state === 'retired') continue;
    if (row.state === 'active') current = row.version;
    if (row.sealedKey === null) {
      if (row.version !== root.version) throw new MasterKeyRootMismatchError(row.version);
      keys.set(row.version, root);
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = root.open(row.sealedKey, root.version, versionKeyLabel(row.version));
    } catch (error) {
      if (error instanceof KeyUnwrapError) throw new MasterKeyRootMismatchError(row.version);
      throw error;
    }
    keys.set(row.version, new InMemoryMasterKey(bytes, row.version, root.protection));
  }
  // A database from before versioning (or not migrated yet in a unit test) has only the root.
  if (current === null || !keys.has(current)) {
    if (rows.length > 0) throw new Error('keyhold_master_key_versions has no live active version');
    keys.set(root.version, root);
    current = root.version;
  }
  return { root, current, keys };
}

/**
 * Zeroes the version keys a keyring opened (never the root: the seal state owns it). Safe right after a swap:
 * every use of a key is synchronous, so none is in flight.
 */
function disposeVersionKeys(ring: OpenedKeyring): void {
  for (const key of ring.keys.values()) {
    if (key !== ring.root) key.dispose?.();
  }
}

/**
 * The MasterKey the rest of Keyhold holds: a keyring over every live master-key version. It wraps and seals
 * under the newest version and unwraps under whichever version a row names. It follows the seal state: while
 * sealed (or unsealed but not loaded yet) every call throws SEALED, so nothing runs on a half-built keyring.
 * `load` re-reads the versions (after unsealing, a rotation or a retirement, here or on another instance).
 */
/**
 * Bytes stored under a master-key version this instance does not hold: retired here, or newer than its keyring.
 * Not damage: the row was likely rewrapped (or written under a new version) while it was being read.
 */
export class MasterKeyVersionNotLiveError extends KeyUnwrapError {
  constructor(readonly masterKeyVersion: number) {
    super(`master key version ${masterKeyVersion} is not live on this instance (retired, or created after it loaded)`);
    this.name = 'MasterKeyVersionNotLiveError';
  }
}

export class MasterKeyRing implements MasterKey {
  private opened: OpenedKeyring | null = null;
  private reloading: Promise<void> | null = null;
  /** Reads of the versions begun, and the latest one the keyring in place was built from. */
  private readsBegun = 0;
  private readApplied = 0;

  constructor(
    private readonly state: SealState,
    private readonly readVersions: () => Promise<MasterKeyVersionRow[]>,
  ) {}

  /** Opens the versions with the unsealed root; throws MasterKeyRootMismatchError if the root does not fit. */
  async load(): Promise<void> {
    const root = this.state.masterKey();
    const read = ++this.readsBegun;
    const rows = await this.readVersions();
    // Sealed while we read (or sealed and unsealed again): that root was disposed; build nothing on it.
    if (this.state.sealed || this.state.masterKey() !== root) return;
    // Loads overlap (a notification, the periodic resync, an unseal): a read older than the keyring in place
    // would bring back a retired version, or an older active one.
    if (read < this.readApplied) return;
    this.readApplied = read;
    const previous = this.opened;
    this.opened = openKeyring(root, rows);
    if (previous) disposeVersionKeys(previous);
  }

  /** Reloads (once, shared by concurrent callers) when a row names a version newer than this keyring knows. */
  async ensureVersions(versions: readonly number[]): Promise<void> {
    const opened = this.ring();
    if (versions.every((version) => opened.keys.has(version) || version <= opened.current)) return;
    this.reloading ??= this.load().finally(() => {
      this.reloading = null;
    });
    await this.reloading;
  }

  /** Forgets every opened version (Keyhold sealed). */
  clear(): void {
    const previous = this.opened;
    this.opened = null;
    if (previous) disposeVersionKeys(previous);
  }

  get loaded(): boolean {
    return this.opened !== null && !this.state.sealed;
  }

  /** The live versions this instance can use, newest last. */
  liveVersions(): number[] {
    return [...this.ring().keys.keys()].sort((a, b) => a - b);
  }

  private ring(): OpenedKeyring {
    const root = this.state.masterKey();
    const opened = this.opened;
    if (!opened || opened.root !== root) throw sealedError();
    return opened;
  }

  private versionKey(version: number): MasterKey {
    const key = this.ring().keys.get(version);
    if (!key) throw new MasterKeyVersionNotLiveError(version);
    return key;
  }

  get version(): number {
    return this.ring().current;
  }

  get protection(): MasterKeyProtection {
    return this.state.protection;
  }

  wrap(material: Uint8Array, binding: KeyMaterialBinding): Buffer {
    return this.versionKey(this.ring().current).wrap(material, binding);
  }

  unwrap(wrapped: Uint8Array, masterKeyVersion: number, binding: KeyMaterialBinding): Buffer {
    return this.versionKey(masterKeyVersion).unwrap(wrapped, masterKeyVersion, binding);
  }

  seal(secret: Uint8Array, label: string): Buffer {
    return this.versionKey(this.ring().current).seal(secret, label);
  }

  open(sealed: Uint8Array, masterKeyVersion: number, label: string): Buffer {
    return this.versionKey(masterKeyVersion).open(sealed, masterKeyVersion, label);
  }

  /** Whether this instance's root opens a version's sealed key: false once another instance rekeyed the root. */
  rootOpens(version: number, sealedKey: Buffer): boolean {
    const root = this.ring().root;
    try {
      root.open(sealedKey, root.version, versionKeyLabel(version)).fill(0);
      return true;
    } catch (error) {
      if (error instanceof KeyUnwrapError) return false;
      throw error;
    }
  }

  /** Seals a new version's key under the root, for keyhold_master_key_versions. */
  sealVersionKey(key: Uint8Array, version: number): Buffer {
    return this.ring().root.seal(key, versionKeyLabel(version));
  }
}
