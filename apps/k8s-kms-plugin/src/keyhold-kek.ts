import { status } from '@grpc/grpc-js';
import type { EncryptionContext, EncryptResponse, KeyView } from '@keyhold/client-sdk';
import { FORMAT_ANNOTATION, FORMAT_VERSION, annotationsDigest, annotationsProblem } from './annotations';
import { PluginError, fromUpstream, invalid } from './errors';
import { MAX_KEY_ID_BYTES, deriveKeyId, keyIdHash } from './key-id';
import type { Logger } from './logger';
import type { PluginMetrics } from './metrics';

/** What the plugin needs from Keyhold: exactly these three calls of `KeyholdClient`. */
export interface KeyholdUpstream {
  getKey(name: string): Promise<KeyView>;
  encrypt(name: string, plaintext: Uint8Array, context?: EncryptionContext): Promise<EncryptResponse>;
  decrypt(name: string, ciphertext: string, context?: EncryptionContext): Promise<{ plaintext: Buffer; keyName: string; keyVersion: number }>;
}

export interface KekOptions {
  keyName: string;
  keyIdSuffix: string;
  refreshIntervalMs: number;
  probeIntervalMs: number;
  upstreamTimeoutMs: number;
  upstreamConcurrency: number;
}

/** Largest plaintext Encrypt accepts (the apiserver sends 32 bytes; above ~600 the ciphertext passes 1 kB). */
export const MAX_PLAINTEXT_BYTES = 4096;
/** Largest ciphertext Decrypt looks at: what MAX_PLAINTEXT_BYTES encrypts to, with room to spare. */
export const MAX_CIPHERTEXT_BYTES = 8192;
/** An unknown key_id triggers at most one metadata read per this interval (it may be a rotation seen first elsewhere). */
const UNKNOWN_KEY_ID_REFRESH_MS = 1000;
/** What an upstream call leaves of the RPC deadline for the answer to travel back. */
const DEADLINE_MARGIN_MS = 25;
const CONTEXT_KEY_ID = 'k8s-kms-v2.key-id';
const CONTEXT_ANNOTATIONS = 'k8s-kms-v2.annotations-sha256';
const CIPHERTEXT = /^kh1:([a-z0-9][a-z0-9._-]{0,63}):([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}$/;
const PROBE_PLAINTEXT = Buffer.from('keyhold k8s-kms-plugin probe', 'utf8');

interface Snapshot {
  view: KeyView;
  keyId: string;
  version: number;
  /** Every version of the key (tombstones included) by its key_id. */
  versionsById: Map<string, number>;
  fetchedAt: number;
}

export interface StatusAnswer {
  version: 'v2';
  healthz: string;
  key_id: string;
}

export interface EncryptAnswer {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}

/**
 * The remote KEK: a Keyhold key, seen through its metadata (cached, refreshed in the background) and its
 * encrypt/decrypt operations.
 *
 * - The key_id comes from the key's primary version (`deriveKeyId`); every replica reads the same metadata,
 *   so all agree within one refresh interval. Encrypt binds the key_id it reports into the encryption
 *   context, checks that Keyhold used exactly that version, and when Keyhold answers with another version
 *   (a rotation not seen yet) refreshes the metadata first and encrypts again: Encrypt never returns a
 *   key_id that Status did not, from the moment it returns, report too.
 * - Status never calls Keyhold: it reads the cached snapshot and the outcome of the last background check.
 * - Every Keyhold call is bounded by the upstream timeout and by the RPC's own deadline, and at most
 *   `upstreamConcurrency` are in flight.
 */
export class KeyholdKek {
  private snapshot: Snapshot | undefined;
  /** The last background failure, cleared by the next success. */
  private failure: { error: PluginError; since: number } | undefined;
  private probeFailure: PluginError | undefined;
  private lastProbeAt = 0;
  private refreshing: Promise<void> | undefined;
  private lastForcedRefreshAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = 0;
  private readonly waiting: Array<() => boolean> = [];

  constructor(
    private readonly upstream: KeyholdUpstream,
    private readonly options: KekOptions,
    private readonly logger: Logger,
    private readonly metrics: PluginMetrics,
    private readonly now: () => number = Date.now,
  ) {}

  /** First metadata read (failure is not fatal: Status reports it and the loop keeps trying), then the loop. */
  async start(): Promise<void> {
    await this.refresh().catch(() => undefined);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  get currentKeyId(): string | undefined {
    return this.snapshot?.keyId;
  }

  // ---- Status ----

  /**
   * The Status policy (kubernetes#138950; docs/kubernetes.md "Status and failures"):
   * - no key metadata ever read: gRPC UNAVAILABLE (there is no key_id to report);
   * - the key cannot be used by decision (disabled, pending destruction or destroyed, its primary version
   *   not enabled, the grant or the key gone): a gRPC error (FAILED_PRECONDITION / PERMISSION_DENIED), so the
   *   apiserver stops extending its write seed and writes stop about 3 minutes later;
   * - Keyhold unreachable, slow, sealed or rate limiting (an outage): healthz = a description, with the last
   *   known key_id: readiness fails and operators are alerted, but the apiserver keeps writing with the seed
   *   it already holds, wrapped by a KEK that still exists;
   * - otherwise healthz "ok".
   */
  status(): StatusAnswer {
    const snap = this.snapshot;
    if (!snap) {
      const why = this.failure ? this.failure.error.message : 'the first read of the key metadata has not finished';
      throw new PluginError(this.failure && !this.failure.error.transient ? this.failure.error.code : status.UNAVAILABLE, `no key_id yet: ${why}`);
    }
    const unusable = this.unusableReason(snap);
    if (unusable) throw unusable;
    if (this.failure) {
      const age = Math.round((this.now() - this.failure.since) / 1000);
      return { version: 'v2', healthz: `keyhold unreachable for ${age}s: ${this.failure.error.message}`, key_id: snap.keyId };
    }
    return { version: 'v2', healthz: 'ok', key_id: snap.keyId };
  }

  /** Why the key cannot be used by decision (not an outage), or undefined. */
  private unusableReason(snap: Snapshot): PluginError | undefined {
    if (this.failure && !this.failure.error.transient) return this.failure.error;
    if (this.probeFailure && !this.probeFailure.transient) return this.probeFailure;
    if (snap.view.state !== 'enabled') {
      return new PluginError(status.FAILED_PRECONDITION, `Keyhold key ${snap.view.name} is ${snap.view.state}`);
    }
    const primary = snap.view.versions.find((v) => v.version === snap.version);
    if (primary && primary.state !== 'enabled') {
      return new PluginError(status.FAILED_PRECONDITION, `primary version ${snap.version} of Keyhold key ${snap.view.name} is ${primary.state}`);
    }
    return undefined;
  }

  // ---- Encrypt ----

  async encrypt(plaintext: Buffer, uid: string, deadline: number): Promise<EncryptAnswer> {
    if (plaintext.length === 0) throw invalid('plaintext is empty');
    if (plaintext.length > MAX_PLAINTEXT_BYTES) throw invalid(`plaintext is ${plaintext.length} bytes; at most ${MAX_PLAINTEXT_BYTES}`);
    const annotations = { [FORMAT_ANNOTATION]: Buffer.from(FORMAT_VERSION) };
    for (let attempt = 0; attempt < 3; attempt++) {
      const snap = this.snapshot ?? (await this.refreshFor(deadline), this.requireSnapshot());
      const unusable = this.unusableReason(snap);
      if (unusable) throw unusable;
      const context = contextFor(snap.keyId, annotations);
      const res = await this.call('encrypt', deadline, () => this.upstream.encrypt(this.options.keyName, plaintext, context));
      if (res.keyName === this.options.keyName && res.keyVersion === snap.version) {
        const ciphertext = Buffer.from(res.ciphertext, 'utf8');
        return { ciphertext, key_id: snap.keyId, annotations };
      }
      // Keyhold encrypted under another version than the one this key_id names (a rotation this plugin has
      // not seen yet, or a Keyhold instance that has not yet): learn the current metadata and encrypt again.
      this.logger.info('Keyhold answered another key version than expected; refreshing key metadata', {
        uid,
        expectedVersion: snap.version,
        answeredVersion: res.keyVersion,
      });
      await this.refreshFor(deadline, true);
    }
    throw new PluginError(status.UNAVAILABLE, "Keyhold's primary key version kept changing during Encrypt; try again", true);
  }

  // ---- Decrypt ----

  async decrypt(ciphertext: Buffer, keyId: string, annotations: Record<string, Buffer>, uid: string, deadline: number): Promise<Buffer> {
    if (ciphertext.length === 0) throw invalid('ciphertext is empty');
    if (ciphertext.length > MAX_CIPHERTEXT_BYTES) throw invalid(`ciphertext is ${ciphertext.length} bytes; at most ${MAX_CIPHERTEXT_BYTES}`);
    if (keyId === '') throw invalid('key_id is empty');
    if (Buffer.byteLength(keyId, 'utf8') > MAX_KEY_ID_BYTES) throw invalid(`key_id is longer than ${MAX_KEY_ID_BYTES} bytes`);
    const problem = annotationsProblem(annotations);
    if (problem) throw invalid(problem);
    const text = ciphertext.toString('latin1');
    const parsed = CIPHERTEXT.exec(text);
    if (!parsed) throw invalid('ciphertext is not a Keyhold ciphertext made by this plugin');
    if (parsed[1] !== this.options.keyName) {
      throw invalid(`ciphertext is under Keyhold key ${parsed[1]}, not ${this.options.keyName} (the key this plugin is configured with)`);
    }
    let version = this.snapshot?.versionsById.get(keyId);
    if (version === undefined && this.now() - this.lastForcedRefreshAt >= UNKNOWN_KEY_ID_REFRESH_MS) {
      // Maybe a rotation another replica saw first: one metadata read (never a key operation), rate-limited.
      this.lastForcedRefreshAt = this.now();
      await this.refreshFor(deadline, true).catch(() => undefined);
      version = this.snapshot?.versionsById.get(keyId);
    }
    if (version === undefined) {
      if (!this.snapshot) throw new PluginError(status.UNAVAILABLE, 'no key metadata from Keyhold yet; cannot check the key_id', true);
      throw invalid(`unknown key_id ${JSON.stringify(keyId.slice(0, 100))}: no version of Keyhold key ${this.options.keyName} has it`);
    }
    if (Number(parsed[2]) !== version) throw invalid(`key_id names version ${version} but the ciphertext is under version ${parsed[2]}`);
    const res = await this.call('decrypt', deadline, () =>
      this.upstream.decrypt(this.options.keyName, text, contextFor(keyId, annotations)),
    );
    this.logger.debug('decrypted', { uid, keyVersion: res.keyVersion });
    return res.plaintext;
  }

  // ---- background refresh and probe ----

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.options.refreshIntervalMs);
  }

  /** One metadata read (single flight), plus the end-to-end probe when due; records the outcome for Status. */
  refresh(force = false): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const run = (async () => {
      try {
        const view = await this.call('getKey', undefined, () => this.upstream.getKey(this.options.keyName));
        this.install(view);
        const due = this.probeFailure !== undefined || this.now() - this.lastProbeAt >= this.options.probeIntervalMs;
        if (due && !force) await this.probe();
        if (this.failure) this.logger.info('Keyhold reachable again', { keyId: this.snapshot?.keyId });
        this.failure = undefined;
      } catch (error) {
        const pluginError = fromUpstream(error, 'key metadata read');
        if (!this.failure) this.logger.warn('Keyhold check failed', { code: status[pluginError.code], error: pluginError.message });
        this.failure = { error: pluginError, since: this.failure?.since ?? this.now() };
        throw pluginError;
      } finally {
        this.publishMetrics();
      }
    })();
    this.refreshing = run.finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** A refresh that an RPC waits for, within its deadline. */
  private async refreshFor(deadline: number, force = true): Promise<void> {
    const budget = deadline - this.now() - DEADLINE_MARGIN_MS;
    if (budget <= 0) throw new PluginError(status.DEADLINE_EXCEEDED, 'deadline passed while reading key metadata');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.refresh(force),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new PluginError(status.DEADLINE_EXCEEDED, 'deadline passed while reading key metadata', true)), budget);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private requireSnapshot(): Snapshot {
    if (!this.snapshot) throw new PluginError(status.UNAVAILABLE, 'no key metadata from Keyhold yet', true);
    return this.snapshot;
  }

  private install(view: KeyView): void {
    if (view.name !== this.options.keyName) throw new PluginError(status.INTERNAL, `Keyhold answered key ${view.name}`);
    if (view.algorithm !== 'aes-256-gcm') {
      throw new PluginError(status.FAILED_PRECONDITION, `Keyhold key ${view.name} is ${view.algorithm}; the plugin needs aes-256-gcm`);
    }
    const versionsById = new Map<string, number>();
    let keyId: string | undefined;
    for (const v of view.versions) {
      const id = deriveKeyId(view, v, this.options.keyIdSuffix);
      versionsById.set(id, v.version);
      if (v.version === view.primaryVersion) keyId = id;
    }
    if (keyId === undefined) throw new PluginError(status.INTERNAL, `Keyhold key ${view.name} lists no primary version ${view.primaryVersion}`);
    const previous = this.snapshot;
    // Never go back: a lagging Keyhold instance may still answer an older primary version.
    if (previous && view.primaryVersion < previous.version && view.createdAt === previous.view.createdAt) return;
    this.snapshot = { view, keyId, version: view.primaryVersion, versionsById, fetchedAt: this.now() };
    if (previous && previous.keyId !== keyId) {
      this.metrics.keyIdChanges.inc({});
      this.logger.info('key_id changed (Keyhold key rotated)', { keyId, previousKeyId: previous.keyId, keyVersion: view.primaryVersion });
    } else if (!previous) {
      this.logger.info('key metadata read', { keyId, keyVersion: view.primaryVersion, keyState: view.state });
    }
  }

  /** Encrypt then decrypt a fixed value under the current key_id: proves the key and both grants work. */
  private async probe(): Promise<void> {
    const snap = this.requireSnapshot();
    try {
      const annotations = {};
      const context = { ...contextFor(snap.keyId, annotations), 'k8s-kms-v2.purpose': 'probe' };
      const enc = await this.call('probe-encrypt', undefined, () => this.upstream.encrypt(this.options.keyName, PROBE_PLAINTEXT, context));
      const dec = await this.call('probe-decrypt', undefined, () => this.upstream.decrypt(this.options.keyName, enc.ciphertext, context));
      if (!dec.plaintext.equals(PROBE_PLAINTEXT)) throw new PluginError(status.INTERNAL, 'probe decrypted to something else');
      this.probeFailure = undefined;
      this.lastProbeAt = this.now();
    } catch (error) {
      const pluginError = fromUpstream(error, 'probe');
      if (!this.probeFailure) this.logger.warn('Keyhold encrypt/decrypt probe failed', { code: status[pluginError.code], error: pluginError.message });
      this.probeFailure = pluginError;
      throw pluginError;
    }
  }

  private publishMetrics(): void {
    const snap = this.snapshot;
    let healthy = false;
    try {
      healthy = this.status().healthz === 'ok';
    } catch {
      healthy = false;
    }
    this.metrics.setKeyState(snap ? { keyIdHash: keyIdHash(snap.keyId), version: snap.version } : undefined, healthy, snap?.fetchedAt ?? 0);
  }

  // ---- upstream calls: deadline, concurrency, metrics ----

  private async call<T>(operation: string, deadline: number | undefined, fn: () => Promise<T>): Promise<T> {
    const started = this.now();
    const limit = Math.min(this.options.upstreamTimeoutMs, deadline === undefined ? Infinity : deadline - started - DEADLINE_MARGIN_MS);
    let outcome = 'ok';
    let timer: NodeJS.Timeout | undefined;
    try {
      if (limit <= 0) throw new PluginError(status.DEADLINE_EXCEEDED, `no time left in the RPC deadline for Keyhold ${operation}`, true);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new PluginError(status.DEADLINE_EXCEEDED, `Keyhold ${operation} did not answer within ${Math.round(limit)} ms`, true)),
          limit,
        );
      });
      const slot = this.acquire();
      await Promise.race([slot.granted, timeout]).catch((error: unknown) => {
        slot.cancel(); // timed out while queued: give the slot back if it comes later
        throw error;
      });
      const work = fn().finally(() => this.release());
      return await Promise.race([work, timeout]);
    } catch (error) {
      const pluginError = fromUpstream(error, operation);
      outcome = status[pluginError.code];
      throw pluginError;
    } finally {
      clearTimeout(timer);
      this.metrics.upstreamDuration.observe({ operation, outcome }, (this.now() - started) / 1000);
    }
  }

  private acquire(): { granted: Promise<void>; cancel: () => void } {
    if (this.inFlight < this.options.upstreamConcurrency) {
      this.inFlight += 1;
      return { granted: Promise.resolve(), cancel: () => undefined };
    }
    let cancelled = false;
    let granted = false;
    const promise = new Promise<void>((resolve) => {
      this.waiting.push(() => {
        if (cancelled) return false;
        granted = true;
        resolve();
        return true;
      });
    });
    return {
      granted: promise,
      cancel: () => {
        cancelled = true;
        if (granted) this.release();
      },
    };
  }

  private release(): void {
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) {
      if (next()) return; // the slot passes straight to a live waiter
    }
    this.inFlight -= 1;
  }
}

function contextFor(keyId: string, annotations: Record<string, Buffer>): EncryptionContext {
  return { [CONTEXT_KEY_ID]: keyId, [CONTEXT_ANNOTATIONS]: annotationsDigest(annotations) };
}
