// A kube-apiserver KMS v2 envelope emulator (the rules of docs' reference §2, re-implemented on a fake
// clock): Status polling (1 min healthy, 10 s after a failure), the Status checks, the write-seed state with
// its 3-minute expiry extended by each good poll (also when healthz != "ok": kubernetes#138950), rotation
// by Status -> Encrypt with the key_id equality check, a 32-byte seed, per-write HKDF-SHA256 keys and
// AES-256-GCM with the etcd path as additional data, the EncryptedObject protobuf behind the
// `k8s:enc:kms:v2:<provider>:` prefix, the decrypted-seed cache keyed like generateCacheKey, staleness.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import type { KmsClient } from './plugin-fixture';

export const POLL_HEALTHY_MS = 60_000;
export const POLL_UNHEALTHY_MS = 10_000;
export const WRITE_STATE_TTL_MS = 3 * 60_000;
const FQDN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+\.?$/;
const SEED_TYPE_HKDF = 1; // HKDF_SHA256_XNONCE_AES_GCM_SEED

export class FakeClock {
  constructor(public nowMs = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.nowMs;
  }
}

interface WriteState {
  seed: Buffer;
  wrapped: Buffer;
  keyId: string;
  annotations: Record<string, Buffer>;
  expiresAt: number;
}

export interface EncryptedObject {
  encryptedData: Buffer;
  keyID: string;
  encryptedDEKSource: Buffer;
  annotations: Record<string, Buffer>;
  encryptedDEKSourceType: number;
}

// ---- a minimal protobuf encoder/decoder for EncryptedObject ----

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
const lenField = (field: number, bytes: Buffer) => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);

export function encodeEncryptedObject(o: EncryptedObject): Buffer {
  const parts: Buffer[] = [lenField(1, o.encryptedData), lenField(2, Buffer.from(o.keyID)), lenField(3, o.encryptedDEKSource)];
  for (const key of Object.keys(o.annotations).sort()) {
    parts.push(lenField(4, Buffer.concat([lenField(1, Buffer.from(key)), lenField(2, o.annotations[key])])));
  }
  if (o.encryptedDEKSourceType) parts.push(varint((5 << 3) | 0), varint(o.encryptedDEKSourceType));
  return Buffer.concat(parts);
}

function* fields(buf: Buffer): Generator<{ field: number; value: Buffer | number }> {
  let i = 0;
  const readVarint = () => {
    let result = 0;
    let shift = 1;
    for (;;) {
      const b = buf[i++];
      result += (b & 0x7f) * shift;
      if (b < 0x80) return result;
      shift *= 128;
    }
  };
  while (i < buf.length) {
    const tag = readVarint();
    if ((tag & 7) === 0) yield { field: tag >> 3, value: readVarint() };
    else if ((tag & 7) === 2) {
      const len = readVarint();
      yield { field: tag >> 3, value: buf.subarray(i, i + len) };
      i += len;
    } else throw new Error(`unexpected wire type ${tag & 7}`);
  }
}

export function decodeEncryptedObject(buf: Buffer): EncryptedObject {
  const o: EncryptedObject = { encryptedData: Buffer.alloc(0), keyID: '', encryptedDEKSource: Buffer.alloc(0), annotations: {}, encryptedDEKSourceType: 0 };
  for (const { field, value } of fields(buf)) {
    if (field === 1) o.encryptedData = value as Buffer;
    else if (field === 2) o.keyID = (value as Buffer).toString();
    else if (field === 3) o.encryptedDEKSource = value as Buffer;
    else if (field === 5) o.encryptedDEKSourceType = value as number;
    else if (field === 4) {
      let k = '';
      let v: Buffer = Buffer.alloc(0);
      for (const entry of fields(value as Buffer)) {
        if (entry.field === 1) k = (entry.value as Buffer).toString();
        else v = entry.value as Buffer;
      }
      o.annotations[k] = v;
    }
  }
  return o;
}

export class ApiserverEmulator {
  private state: WriteState | undefined;
  private firstVersion: string | undefined;
  private nextPollAt: number;
  private readonly seedCache = new Map<string, Buffer>();
  readonly prefix: string;
  healthy = false;
  lastProblem = '';
  readonly calls = { status: 0, encrypt: 0, decrypt: 0 };

  constructor(
    private readonly client: KmsClient,
    readonly clock: FakeClock,
    providerName = 'keyhold',
    private readonly timeoutMs = 3000,
  ) {
    this.prefix = `k8s:enc:kms:v2:${providerName}:`;
    this.nextPollAt = clock.now();
  }

  get currentKeyId(): string | undefined {
    return this.state?.keyId;
  }

  /** One probe: Status, checks, then extend (same key_id) or rotate (Encrypt a new seed). */
  async poll(): Promise<void> {
    const now = this.clock.now();
    let ok = false;
    try {
      this.calls.status += 1;
      const status = await this.client.status(this.timeoutMs);
      if (status.version !== 'v2' && status.version !== 'v2beta1') throw new Error(`bad version ${status.version}`);
      this.firstVersion ??= status.version;
      if (status.version !== this.firstVersion) throw new Error(`version changed from ${this.firstVersion} to ${status.version}`);
      validKeyId(status.key_id);
      // kubernetes#138950: the extend/rotate step runs whatever healthz says.
      if (this.state && this.state.keyId === status.key_id) {
        this.state.expiresAt = now + WRITE_STATE_TTL_MS;
      } else {
        const seed = randomBytes(32);
        this.calls.encrypt += 1;
        const res = await this.client.encrypt(Buffer.from(seed), randomUUID(), this.timeoutMs);
        validKeyId(res.key_id);
        if (res.ciphertext.length === 0 || res.ciphertext.length > 1024) throw new Error(`bad ciphertext length ${res.ciphertext.length}`);
        validAnnotations(res.annotations);
        if (res.key_id !== status.key_id) throw new Error(`failed to rotate DEK: Status key_id ${status.key_id} != Encrypt key_id ${res.key_id}`);
        this.state = { seed, wrapped: res.ciphertext, keyId: res.key_id, annotations: res.annotations, expiresAt: now + WRITE_STATE_TTL_MS };
        // Its own new seed goes straight into the read cache, as the apiserver does.
        this.seedCache.set(seedCacheKey(SEED_TYPE_HKDF, res.ciphertext, res.key_id, res.annotations), seed);
      }
      if (status.healthz !== 'ok') throw new Error(`got unexpected healthz status: ${status.healthz}`);
      ok = true;
      this.lastProblem = '';
    } catch (error) {
      this.lastProblem = (error as Error).message;
    }
    this.healthy = ok;
    this.nextPollAt = now + (ok ? POLL_HEALTHY_MS : POLL_UNHEALTHY_MS);
  }

  /** Moves the fake clock forward by `ms`, running every poll that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    while (this.nextPollAt <= target) {
      this.clock.nowMs = Math.max(this.clock.nowMs, this.nextPollAt);
      await this.poll();
    }
    this.clock.nowMs = target;
  }

  /** TransformToStorage: needs an unexpired write state. */
  write(path: string, data: Buffer): Buffer {
    const state = this.state;
    if (!state) throw new Error('no valid KMS v2 state yet');
    if (this.clock.now() > state.expiresAt) throw new Error('encryption state expired: the KMS plugin has not been healthy for 3 minutes');
    const info = randomBytes(32);
    const key = Buffer.from(hkdfSync('sha256', state.seed, info, Buffer.alloc(0), 32));
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(path));
    const ct = Buffer.concat([cipher.update(data), cipher.final()]);
    const encryptedData = Buffer.concat([info, nonce, ct, cipher.getAuthTag()]);
    const object = encodeEncryptedObject({
      encryptedData,
      keyID: state.keyId,
      encryptedDEKSource: state.wrapped,
      annotations: state.annotations,
      encryptedDEKSourceType: SEED_TYPE_HKDF,
    });
    return Buffer.concat([Buffer.from(this.prefix), object]);
  }

  /** TransformFromStorage: needs some state (even for reads), a cached or freshly Decrypted seed. */
  async read(path: string, value: Buffer): Promise<{ data: Buffer; stale: boolean; keyId: string }> {
    if (!this.state) throw new Error('no valid KMS v2 state yet: reads fail too');
    if (!value.subarray(0, this.prefix.length).equals(Buffer.from(this.prefix))) throw new Error('not written by this provider');
    const o = decodeEncryptedObject(value.subarray(this.prefix.length));
    const cacheKey = seedCacheKey(o.encryptedDEKSourceType, o.encryptedDEKSource, o.keyID, o.annotations);
    let seed = this.seedCache.get(cacheKey);
    if (!seed) {
      this.calls.decrypt += 1;
      seed = await this.client.decrypt({ ciphertext: o.encryptedDEKSource, key_id: o.keyID, annotations: o.annotations, uid: randomUUID() }, this.timeoutMs);
      if (seed.length !== 32) throw new Error(`seed of ${seed.length} bytes`);
      this.seedCache.set(cacheKey, seed);
    }
    const info = o.encryptedData.subarray(0, 32);
    const nonce = o.encryptedData.subarray(32, 44);
    const tag = o.encryptedData.subarray(o.encryptedData.length - 16);
    const key = Buffer.from(hkdfSync('sha256', seed, info, Buffer.alloc(0), 32));
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.from(path));
    decipher.setAuthTag(tag);
    const data = Buffer.concat([decipher.update(o.encryptedData.subarray(44, o.encryptedData.length - 16)), decipher.final()]);
    return { data, stale: o.keyID !== this.state.keyId, keyId: o.keyID };
  }
}

/** Like generateCacheKey: a hash of the seed type, the wrapped seed, the key_id and the sorted annotations. */
function seedCacheKey(type: number, wrapped: Buffer, keyId: string, annotations: Record<string, Buffer>): string {
  return createHash('sha256')
    .update(Buffer.from([type]))
    .update(wrapped)
    .update(keyId)
    .update(JSON.stringify(Object.keys(annotations).sort().map((k) => [k, annotations[k].toString('base64')])))
    .digest('hex');
}

function validKeyId(keyId: string): void {
  if (keyId === '') throw new Error('key_id is empty');
  if (Buffer.byteLength(keyId) > 1024) throw new Error('key_id too long');
}

function validAnnotations(annotations: Record<string, Buffer>): void {
  let total = 0;
  for (const [k, v] of Object.entries(annotations)) {
    if (!FQDN.test(k)) throw new Error(`annotation key ${k} is not a fully qualified domain name`);
    total += Buffer.byteLength(k) + v.length;
  }
  if (total > 32 * 1024) throw new Error('annotations too large');
}
