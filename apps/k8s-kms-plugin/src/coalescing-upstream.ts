import { ERROR_HTTP_STATUS, MAX_BATCH_ITEMS, MAX_REQUEST_BODY_BYTES } from '@keyhold/contracts';
import {
  type DecryptResult,
  type EncryptResponse,
  type EncryptionContext,
  KeyholdApiError,
  KeyholdItemError,
  type KeyView,
} from '@keyhold/client-sdk';
import type { KeyholdUpstream } from './keyhold-kek';

/** What the coalescer needs from `KeyholdClient`: the single calls and their batch routes. */
export interface BatchingKeyholdClient extends KeyholdUpstream {
  encryptBatch(
    name: string,
    items: Array<{ plaintext: Uint8Array; context?: EncryptionContext }>,
  ): Promise<Array<EncryptResponse | KeyholdItemError>>;
  decryptBatch(
    name: string,
    items: Array<{ ciphertext: string; context?: EncryptionContext }>,
  ): Promise<Array<DecryptResult | KeyholdItemError>>;
}

/**
 * Largest batch request body the coalescer sends: three quarters of the body Keyhold accepts
 * (MAX_REQUEST_BODY_BYTES, 64 KiB; larger ones are refused with 413, which would fail every call in the
 * batch). The margin covers what the estimate below does not count exactly (JSON escapes in contexts).
 */
export const MAX_BATCH_BODY_BYTES = Math.floor((MAX_REQUEST_BODY_BYTES * 3) / 4);

/** `{"items":[` ... `]}` around the items. */
const BATCH_ENVELOPE_BYTES = '{"items":[]}'.length;

export interface CoalescingOptions {
  /** Keyhold requests (single or batch) on the wire at once per operation; arrivals beyond wait and go together. */
  maxRequestsInFlight: number;
  /** Largest batch sent (Keyhold accepts up to MAX_BATCH_ITEMS). */
  maxBatchItems?: number;
  /** Largest batch request body, in bytes, as estimated when calls are queued (at most MAX_BATCH_BODY_BYTES). */
  maxBatchBytes?: number;
}

interface Pending<I, R> {
  item: I;
  /** The item's JSON size in the batch request body, estimated when it was queued. */
  size: number;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/**
 * Sends Encrypt and Decrypt to Keyhold the way a busy apiserver needs: one call alone on its own route while
 * the wire is free, and, once `maxRequestsInFlight` requests are out, the calls that arrive meanwhile leave
 * together in one batch request when a slot frees (no timer: nothing waits that could have gone already).
 * Under load, one HTTP request and one TLS record then carry many seeds, and Keyhold's per-request cost
 * (authentication, grant check, parsing, audit commit) is paid once per batch instead of once per seed.
 *
 * Each caller sees exactly what a single call would have given it: its own result, or an error of the same
 * kind (`KeyholdApiError` with the item's code and HTTP status, or the batch request's own failure).
 */
export class CoalescingUpstream implements KeyholdUpstream {
  private readonly encrypts: Lane<{ name: string; plaintext: Uint8Array; context?: EncryptionContext }, EncryptResponse>;
  private readonly decrypts: Lane<{ name: string; ciphertext: string; context?: EncryptionContext }, DecryptResult>;

  constructor(
    private readonly client: BatchingKeyholdClient,
    options: CoalescingOptions,
  ) {
    const limits = {
      inFlight: options.maxRequestsInFlight,
      batch: Math.min(options.maxBatchItems ?? MAX_BATCH_ITEMS, MAX_BATCH_ITEMS),
      bytes: Math.min(options.maxBatchBytes ?? MAX_BATCH_BODY_BYTES, MAX_BATCH_BODY_BYTES),
    };
    this.encrypts = new Lane(
      limits,
      (one) => client.encrypt(one.name, one.plaintext, one.context),
      (name, items) => client.encryptBatch(name, items),
      'encrypt/batch',
      // {"plaintext":"<base64>","context":{...}}: the base64 is 4 characters per 3 bytes, rounded up.
      (one) => jsonBytes({ plaintext: '', context: one.context }) + 4 * Math.ceil(one.plaintext.length / 3),
    );
    this.decrypts = new Lane(
      limits,
      (one) => client.decrypt(one.name, one.ciphertext, one.context),
      (name, items) => client.decryptBatch(name, items),
      'decrypt/batch',
      (one) => jsonBytes({ ciphertext: one.ciphertext, context: one.context }),
    );
  }

  getKey(name: string): Promise<KeyView> {
    return this.client.getKey(name);
  }

  encrypt(name: string, plaintext: Uint8Array, context?: EncryptionContext): Promise<EncryptResponse> {
    return this.encrypts.submit({ name, plaintext, context });
  }

  decrypt(name: string, ciphertext: string, context?: EncryptionContext): Promise<DecryptResult> {
    return this.decrypts.submit({ name, ciphertext, context });
  }
}

/** The UTF-8 size of a value's JSON (undefined members are left out, as the client leaves them out). */
function jsonBytes(value: object): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/**
 * One operation's queue: items for the same key leave together; at most `inFlight` requests are out, and a
 * batch holds at most `batch` items and `bytes` of request body.
 */
class Lane<I extends { name: string }, R> {
  private readonly queue: Array<Pending<I, R>> = [];
  private inFlight = 0;

  constructor(
    private readonly limits: { inFlight: number; batch: number; bytes: number },
    private readonly sendOne: (item: I) => Promise<R>,
    private readonly sendBatch: (name: string, items: I[]) => Promise<Array<R | KeyholdItemError>>,
    private readonly route: string,
    private readonly sizeOf: (item: I) => number,
  ) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, size: this.sizeOf(item), resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.limits.inFlight && this.queue.length > 0) {
      const group = this.takeGroup();
      this.inFlight += 1;
      void this.send(group).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  /**
   * The oldest waiting item and the others for the same key, in arrival order, up to the batch limits: the
   * oldest always leaves (alone, on the single route, if it is too large to share a request); the batch
   * closes at the first item that would take its body over `limits.bytes`.
   */
  private takeGroup(): Array<Pending<I, R>> {
    const name = this.queue[0].item.name;
    const group: Array<Pending<I, R>> = [];
    let bytes = BATCH_ENVELOPE_BYTES;
    for (let i = 0; i < this.queue.length && group.length < this.limits.batch; ) {
      const pending = this.queue[i];
      if (pending.item.name !== name) {
        i += 1;
        continue;
      }
      // Items are separated by a comma.
      const added = pending.size + (group.length > 0 ? 1 : 0);
      if (group.length > 0 && bytes + added > this.limits.bytes) break;
      bytes += added;
      group.push(...this.queue.splice(i, 1));
    }
    return group;
  }

  private async send(group: Array<Pending<I, R>>): Promise<void> {
    if (group.length === 1) {
      const [only] = group;
      await this.sendOne(only.item).then(only.resolve, only.reject);
      return;
    }
    let results: Array<R | KeyholdItemError>;
    try {
      results = await this.sendBatch(group[0].item.name, group.map((pending) => pending.item));
    } catch (error) {
      for (const pending of group) pending.reject(error);
      return;
    }
    group.forEach((pending, index) => {
      const result = results[index];
      if (result instanceof KeyholdItemError) pending.reject(this.itemError(group[0].item.name, result));
      else pending.resolve(result);
    });
  }

  /** An item's refusal, shaped like the refusal of the same call sent alone. */
  private itemError(name: string, error: KeyholdItemError): KeyholdApiError {
    const status = (ERROR_HTTP_STATUS as Record<string, number>)[error.code] ?? 500;
    return new KeyholdApiError({
      status,
      code: error.code,
      message: error.message,
      method: 'POST',
      path: `/v1/keys/${encodeURIComponent(name)}/${this.route}`,
    });
  }
}
