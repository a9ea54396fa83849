import { ERROR_HTTP_STATUS, MAX_BATCH_ITEMS } from '@keyhold/contracts';
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

export interface CoalescingOptions {
  /** Keyhold requests (single or batch) on the wire at once per operation; arrivals beyond wait and go together. */
  maxRequestsInFlight: number;
  /** Largest batch sent (Keyhold accepts up to MAX_BATCH_ITEMS). */
  maxBatchItems?: number;
}

interface Pending<I, R> {
  item: I;
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
    const limits = { inFlight: options.maxRequestsInFlight, batch: Math.min(options.maxBatchItems ?? MAX_BATCH_ITEMS, MAX_BATCH_ITEMS) };
    this.encrypts = new Lane(
      limits,
      (one) => client.encrypt(one.name, one.plaintext, one.context),
      (name, items) => client.encryptBatch(name, items),
      'encrypt/batch',
    );
    this.decrypts = new Lane(
      limits,
      (one) => client.decrypt(one.name, one.ciphertext, one.context),
      (name, items) => client.decryptBatch(name, items),
      'decrypt/batch',
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

/** One operation's queue: items for the same key leave together; at most `inFlight` requests are out. */
class Lane<I extends { name: string }, R> {
  private readonly queue: Array<Pending<I, R>> = [];
  private inFlight = 0;

  constructor(
    private readonly limits: { inFlight: number; batch: number },
    private readonly sendOne: (item: I) => Promise<R>,
    private readonly sendBatch: (name: string, items: I[]) => Promise<Array<R | KeyholdItemError>>,
    private readonly route: string,
  ) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
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

  /** The oldest waiting item and the others for the same key, in arrival order, up to the batch limit. */
  private takeGroup(): Array<Pending<I, R>> {
    const name = this.queue[0].item.name;
    const group: Array<Pending<I, R>> = [];
    for (let i = 0; i < this.queue.length && group.length < this.limits.batch; ) {
      if (this.queue[i].item.name === name) group.push(...this.queue.splice(i, 1));
      else i += 1;
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
