import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type {
  BatchItemError,
  BatchResponse,
  CreateKeyRequest,
  DatakeyResponse,
  DecryptResponse,
  EncryptionContext,
  EncryptResponse,
  KeyListView,
  KeyView,
  RandomResponse,
  UnwrapResponse,
  UpdateKeyRequest,
  WrapResponse,
} from '@keyhold/contracts';
import { KeyholdApiError, KeyholdItemError, KeyholdNetworkError } from './errors';

export interface KeyholdClientOptions {
  /** e.g. `https://localhost:8443`; the client appends `/v1/...` (a path prefix in the URL is kept). */
  baseUrl: string;
  /** PEM bundle of the CA(s) that sign the server certificate; nothing else is trusted. */
  ca: string | Buffer;
  /** Client certificate PEM (chain allowed) presented on every connection. */
  cert: string | Buffer;
  /** Private key PEM of the client certificate. */
  key: string | Buffer;
  /** Deadline per request covering connect, headers and the whole body; default 10 000 ms. */
  timeoutMs?: number;
  /** Keep-alive connections in the pool; default 16. Further requests queue. */
  connections?: number;
  /** Aborts every in-flight and future request of this client when it fires. */
  signal?: AbortSignal;
  /** TLS server name (SNI and certificate check) when it differs from the host in `baseUrl`. */
  servername?: string;
}

export interface KeyholdClientFileOptions extends Omit<KeyholdClientOptions, 'ca' | 'cert' | 'key'> {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface DecryptResult {
  plaintext: Buffer;
  keyName: string;
  keyVersion: number;
}

export interface DataKeyResult {
  /** Present unless `withPlaintext: false` was asked for. */
  plaintext?: Buffer;
  ciphertext: string;
  keyName: string;
  keyVersion: number;
}

export interface UnwrapResult {
  key: Buffer;
  keyName: string;
  keyVersion: number;
}

export interface RawResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body; the text itself when it is not JSON; `undefined` when empty. */
  body: T;
}

export interface RawRequestOptions {
  /** Extra or overriding request headers (e.g. another `content-type`). */
  headers?: Record<string, string>;
}

export interface HealthResponse {
  status: string;
  [k: string]: unknown;
}

type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECTIONS = 16;
const USER_AGENT = 'keyhold-client-sdk/0.1.0';

interface Received {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * A typed client of the Keyhold service plane (`/v1`, the api-v1 contract).
 *
 * What it guarantees:
 * - **Mutual TLS, one pool.** Every request goes over one undici `Pool` to the single origin of
 *   `baseUrl`, with keep-alive connections (at most `connections`, default 16; more requests queue).
 *   Each connection presents `cert`/`key` and trusts only `ca` for the server certificate, checked
 *   against the host name of `baseUrl` (or `servername`). Nothing is sent over plain HTTP.
 * - **Timeouts.** Each request has one deadline, `timeoutMs` (default 10 s), covering connecting,
 *   waiting for the headers and reading the whole body; past it the request is aborted and rejects
 *   with a `KeyholdNetworkError` whose `timedOut` is true. `signal` aborts everything.
 * - **Errors.** A non-2xx answer rejects with `KeyholdApiError` (`status`, `code`, `requestId`), except
 *   from `request()` and from `health()` when the body is a health document. A request that got no
 *   answer rejects with `KeyholdNetworkError`, naming the base URL and keeping the original error as
 *   `cause`. One failed item of a batch is a `KeyholdItemError` in that item's place, not a rejection.
 *   No error message ever holds a request body (plaintext, keys, ciphertexts, contexts).
 * - **Encoding.** Binary values go out as standard base64 and come back as `Buffer`s; key names are
 *   path-encoded with `encodeURIComponent`; bodies are JSON with `content-type: application/json`.
 *
 * Call `close()` when done: it lets in-flight requests finish, then closes the connections.
 */
export class KeyholdClient {
  private readonly pool: Pool;
  private readonly baseUrl: string;
  private readonly pathPrefix: string;
  private readonly timeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: KeyholdClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new TypeError(`KeyholdClient: baseUrl is not a URL: ${String(options.baseUrl)}`);
    }
    if (url.protocol !== 'https:') throw new TypeError('KeyholdClient: baseUrl must be an https:// URL');
    if (url.username || url.password) throw new TypeError('KeyholdClient: baseUrl must not hold credentials');
    if (url.search || url.hash) throw new TypeError('KeyholdClient: baseUrl must not have a query or fragment');
    if (!options.ca || !options.cert || !options.key) {
      throw new TypeError('KeyholdClient: ca, cert and key are all required (mutual TLS)');
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError('KeyholdClient: timeoutMs must be > 0');
    const connections = options.connections ?? DEFAULT_CONNECTIONS;
    if (!Number.isSafeInteger(connections) || connections < 1) {
      throw new RangeError('KeyholdClient: connections must be a positive integer');
    }

    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.baseUrl = url.origin + this.pathPrefix;
    this.timeoutMs = timeoutMs;
    this.signal = options.signal;
    this.pool = new Pool(url.origin, {
      connections,
      connect: {
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        rejectUnauthorized: true,
        ...(options.servername !== undefined ? { servername: options.servername } : {}),
      },
    });
  }

  /** Reads the three PEM files (synchronously) and builds a client. */
  static fromFiles(options: KeyholdClientFileOptions): KeyholdClient {
    const { caFile, certFile, keyFile, ...rest } = options;
    return new KeyholdClient({
      ...rest,
      ca: readFileSync(caFile),
      cert: readFileSync(certFile),
      key: readFileSync(keyFile),
    });
  }

  // ---- keys ----

  async createKey(req: CreateKeyRequest): Promise<KeyView> {
    return this.call<KeyView>('POST', '/v1/keys', req);
  }

  async getKey(name: string): Promise<KeyView> {
    return this.call<KeyView>('GET', keyPath(name));
  }

  async listKeys(opts: { limit?: number; cursor?: string } = {}): Promise<KeyListView> {
    const query = new URLSearchParams();
    if (opts.limit !== undefined) query.set('limit', String(opts.limit));
    if (opts.cursor !== undefined) query.set('cursor', opts.cursor);
    const qs = query.toString();
    return this.call<KeyListView>('GET', qs ? `/v1/keys?${qs}` : '/v1/keys');
  }

  /** Every key visible to this identity, page after page (following `nextCursor`). */
  async *listAllKeys(opts: { pageSize?: number } = {}): AsyncIterable<KeyView> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.listKeys({
        ...(opts.pageSize !== undefined ? { limit: opts.pageSize } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      if (!Array.isArray(page.keys)) throw this.protocolError('GET', '/v1/keys', 200, 'a key list without "keys"');
      yield* page.keys;
      if (page.nextCursor === null || page.nextCursor === undefined || page.nextCursor === '') return;
      if (page.nextCursor === cursor) {
        throw this.protocolError('GET', '/v1/keys', 200, 'the same nextCursor twice (the listing would never end)');
      }
      cursor = page.nextCursor;
    }
  }

  async updateKey(name: string, req: UpdateKeyRequest): Promise<KeyView> {
    return this.call<KeyView>('PATCH', keyPath(name), req);
  }

  async rotateKey(name: string): Promise<KeyView> {
    return this.call<KeyView>('POST', `${keyPath(name)}/rotate`, {});
  }

  async disableKey(name: string): Promise<KeyView> {
    return this.call<KeyView>('POST', `${keyPath(name)}/disable`, {});
  }

  async enableKey(name: string): Promise<KeyView> {
    return this.call<KeyView>('POST', `${keyPath(name)}/enable`, {});
  }

  async scheduleKeyDestruction(name: string, pendingDays?: number): Promise<KeyView> {
    return this.call<KeyView>('POST', `${keyPath(name)}/schedule-destruction`, pendingDaysBody(pendingDays));
  }

  async cancelKeyDestruction(name: string): Promise<KeyView> {
    return this.call<KeyView>('POST', `${keyPath(name)}/cancel-destruction`, {});
  }

  async scheduleVersionDestruction(name: string, version: number, pendingDays?: number): Promise<KeyView> {
    return this.call<KeyView>(
      'POST',
      `${versionPath(name, version)}/schedule-destruction`,
      pendingDaysBody(pendingDays),
    );
  }

  async cancelVersionDestruction(name: string, version: number): Promise<KeyView> {
    return this.call<KeyView>('POST', `${versionPath(name, version)}/cancel-destruction`, {});
  }

  // ---- cryptographic operations ----

  async encrypt(name: string, plaintext: Uint8Array, context?: EncryptionContext): Promise<EncryptResponse> {
    const path = `${keyPath(name)}/encrypt`;
    const res = await this.call<EncryptResponse>('POST', path, withContext({ plaintext: toBase64(plaintext) }, context));
    return this.ciphertextResult('POST', path, res);
  }

  async decrypt(name: string, ciphertext: string, context?: EncryptionContext): Promise<DecryptResult> {
    return this.decryptAt(`${keyPath(name)}/decrypt`, ciphertext, context);
  }

  /** `POST /v1/decrypt`: the key is read from the ciphertext. */
  async decryptAny(ciphertext: string, context?: EncryptionContext): Promise<DecryptResult> {
    return this.decryptAt('/v1/decrypt', ciphertext, context);
  }

  async reencrypt(name: string, ciphertext: string, context?: EncryptionContext): Promise<EncryptResponse> {
    const path = `${keyPath(name)}/reencrypt`;
    const res = await this.call<EncryptResponse>('POST', path, withContext({ ciphertext }, context));
    return this.ciphertextResult('POST', path, res);
  }

  async generateDataKey(
    name: string,
    opts: { bytes?: 16 | 24 | 32; context?: EncryptionContext; withPlaintext?: boolean } = {},
  ): Promise<DataKeyResult> {
    const path = `${keyPath(name)}/datakey`;
    const body: Record<string, unknown> = {};
    if (opts.bytes !== undefined) body.bytes = opts.bytes;
    if (opts.context !== undefined) body.context = opts.context;
    if (opts.withPlaintext !== undefined) body.withPlaintext = opts.withPlaintext;
    const res = await this.call<DatakeyResponse>('POST', path, body);
    const out: DataKeyResult = this.ciphertextResult('POST', path, res);
    if (res.plaintext !== undefined && res.plaintext !== null) {
      out.plaintext = this.fromBase64('POST', path, res.plaintext, 'plaintext');
    }
    return out;
  }

  async wrapKey(name: string, key: Uint8Array, context?: EncryptionContext): Promise<WrapResponse> {
    const path = `${keyPath(name)}/wrap`;
    const res = await this.call<WrapResponse>('POST', path, withContext({ key: toBase64(key) }, context));
    return this.ciphertextResult('POST', path, res);
  }

  async unwrapKey(name: string, ciphertext: string, context?: EncryptionContext): Promise<UnwrapResult> {
    const path = `${keyPath(name)}/unwrap`;
    const res = await this.call<UnwrapResponse>('POST', path, withContext({ ciphertext }, context));
    return {
      key: this.fromBase64('POST', path, res.key, 'key'),
      keyName: res.keyName,
      keyVersion: res.keyVersion,
    };
  }

  async random(bytes: number): Promise<Buffer> {
    const res = await this.call<RandomResponse>('POST', '/v1/random', { bytes });
    return this.fromBase64('POST', '/v1/random', res.random, 'random');
  }

  // ---- batches (one result per item, in order; a failed item is a KeyholdItemError) ----

  async encryptBatch(
    name: string,
    items: Array<{ plaintext: Uint8Array; context?: EncryptionContext }>,
  ): Promise<Array<EncryptResponse | KeyholdItemError>> {
    const path = `${keyPath(name)}/encrypt/batch`;
    const wire = items.map((item) => withContext({ plaintext: toBase64(item.plaintext) }, item.context));
    return this.batch<EncryptResponse, EncryptResponse>(path, wire, (r) => this.ciphertextResult('POST', path, r));
  }

  async decryptBatch(
    name: string,
    items: Array<{ ciphertext: string; context?: EncryptionContext }>,
  ): Promise<Array<DecryptResult | KeyholdItemError>> {
    const path = `${keyPath(name)}/decrypt/batch`;
    const wire = items.map((item) => withContext({ ciphertext: item.ciphertext }, item.context));
    return this.batch<DecryptResponse, DecryptResult>(path, wire, (r) => this.decryptResult('POST', path, r));
  }

  async reencryptBatch(
    name: string,
    items: Array<{ ciphertext: string; context?: EncryptionContext }>,
  ): Promise<Array<EncryptResponse | KeyholdItemError>> {
    const path = `${keyPath(name)}/reencrypt/batch`;
    const wire = items.map((item) => withContext({ ciphertext: item.ciphertext }, item.context));
    return this.batch<EncryptResponse, EncryptResponse>(path, wire, (r) => this.ciphertextResult('POST', path, r));
  }

  // ---- other ----

  /** `GET /v1/health`: the health document whatever the status (a 503 still answers its JSON). */
  async health(): Promise<HealthResponse> {
    const path = '/v1/health';
    const res = await this.send('GET', path, undefined);
    const json = parseJson(res.text);
    if (isObject(json) && typeof json.status === 'string') return json as HealthResponse;
    if (res.status >= 200 && res.status < 300) throw this.protocolError('GET', path, res.status, 'no health document');
    throw this.apiError('GET', path, res, json);
  }

  /**
   * Raw escape hatch (for tests): sends `body` as JSON (a string or bytes as they are) to `path` under the
   * base URL (e.g. `/v1/keys`) and answers whatever came back; it does not throw on 4xx/5xx.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options: RawRequestOptions = {},
  ): Promise<RawResponse<T>> {
    if (!path.startsWith('/')) throw new TypeError('KeyholdClient.request: path must start with "/"');
    const res = await this.send(method.toUpperCase() as HttpMethod, path, body, options.headers);
    const json = parseJson(res.text);
    return {
      status: res.status,
      headers: res.headers,
      body: (json !== undefined ? json : res.text === '' ? undefined : res.text) as T,
    };
  }

  /** Lets in-flight requests finish, then closes every connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.pool.close();
    return this.closing;
  }

  // ---- internals ----

  private async call<T>(method: HttpMethod, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const json = parseJson(res.text);
    if (res.status < 200 || res.status >= 300) throw this.apiError(method, path, res, json);
    if (!isObject(json)) throw this.protocolError(method, path, res.status, 'a body that is not a JSON object');
    return json as T;
  }

  private async batch<R, O>(
    path: string,
    items: object[],
    map: (result: R) => O,
  ): Promise<Array<O | KeyholdItemError>> {
    if (items.length === 0) return [];
    const res = await this.call<BatchResponse<R>>('POST', path, { items });
    if (!Array.isArray(res.results) || res.results.length !== items.length) {
      const got = Array.isArray(res.results) ? res.results.length : 'no';
      throw this.protocolError('POST', path, 200, `${got} results for ${items.length} items`);
    }
    return res.results.map((result) => {
      if (isItemError(result)) return new KeyholdItemError(String(result.error.code), String(result.error.message ?? ''));
      return map(result);
    });
  }

  private async decryptAt(path: string, ciphertext: string, context?: EncryptionContext): Promise<DecryptResult> {
    const res = await this.call<DecryptResponse>('POST', path, withContext({ ciphertext }, context));
    return this.decryptResult('POST', path, res);
  }

  private decryptResult(method: string, path: string, res: DecryptResponse): DecryptResult {
    return {
      plaintext: this.fromBase64(method, path, res.plaintext, 'plaintext'),
      keyName: res.keyName,
      keyVersion: res.keyVersion,
    };
  }

  private ciphertextResult(method: string, path: string, res: EncryptResponse): EncryptResponse {
    if (typeof res.ciphertext !== 'string') throw this.protocolError(method, path, 200, 'an answer without "ciphertext"');
    return { ciphertext: res.ciphertext, keyName: res.keyName, keyVersion: res.keyVersion };
  }

  private fromBase64(method: string, path: string, value: unknown, field: string): Buffer {
    if (typeof value !== 'string') throw this.protocolError(method, path, 200, `an answer without "${field}"`);
    return Buffer.from(value, 'base64');
  }

  /** One HTTP exchange under the deadline; rejects only when no answer came (KeyholdNetworkError). */
  private async send(
    method: HttpMethod,
    path: string,
    body: unknown,
    extraHeaders?: Record<string, string>,
  ): Promise<Received> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    let payload: string | Uint8Array | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    if (extraHeaders) {
      for (const [name, value] of Object.entries(extraHeaders)) headers[name.toLowerCase()] = value;
    }

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`deadline of ${this.timeoutMs} ms passed`));
    }, this.timeoutMs);
    const outer = this.signal;
    const onOuterAbort = (): void => controller.abort(outer?.reason);
    if (outer) {
      if (outer.aborted) onOuterAbort();
      else outer.addEventListener('abort', onOuterAbort, { once: true });
    }

    try {
      const res = await this.pool.request({
        method,
        path: this.pathPrefix + path,
        headers,
        body: payload,
        signal: controller.signal,
      });
      // Always read the body, also of errors, so the connection goes back to the pool.
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      const what = `Keyhold request ${method} ${path} to ${this.baseUrl}`;
      const message = timedOut
        ? `${what} timed out after ${this.timeoutMs} ms`
        : controller.signal.aborted
          ? `${what} was aborted`
          : `${what} failed: ${describe(err)}`;
      throw new KeyholdNetworkError({ message, cause: err, timedOut, baseUrl: this.baseUrl, method, path });
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    }
  }

  private apiError(method: string, path: string, res: Received, json: unknown): KeyholdApiError {
    const headerId = res.headers['x-request-id'];
    const fromHeader = typeof headerId === 'string' ? headerId : undefined;
    if (isObject(json) && isObject(json.error) && typeof json.error.code === 'string') {
      const error = json.error;
      const requestId = typeof error.requestId === 'string' ? error.requestId : fromHeader;
      return new KeyholdApiError({
        status: res.status,
        code: error.code as string,
        message: typeof error.message === 'string' ? error.message : `HTTP ${res.status}`,
        ...(requestId !== undefined ? { requestId } : {}),
        method,
        path,
      });
    }
    return new KeyholdApiError({
      status: res.status,
      code: res.status === 502 || res.status === 503 || res.status === 504 ? 'UNAVAILABLE' : 'INTERNAL',
      message: `${this.baseUrl} answered ${method} ${path} with HTTP ${res.status} and no Keyhold error body`,
      ...(fromHeader !== undefined ? { requestId: fromHeader } : {}),
      method,
      path,
    });
  }

  /** The server answered something this SDK cannot read: reported as an INTERNAL API error. */
  private protocolError(method: string, path: string, status: number, what: string): KeyholdApiError {
    return new KeyholdApiError({
      status,
      code: 'INTERNAL',
      message: `${this.baseUrl} answered ${method} ${path} with ${what}`,
      method,
      path,
    });
  }
}

function keyPath(name: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..') {
    throw new TypeError('Keyhold key name must be a non-empty string other than "." and ".."');
  }
  return `/v1/keys/${encodeURIComponent(name)}`;
}

function versionPath(name: string, version: number): string {
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError('Keyhold key version must be an integer >= 1');
  return `${keyPath(name)}/versions/${version}`;
}

function pendingDaysBody(pendingDays: number | undefined): { pendingDays?: number } {
  return pendingDays === undefined ? {} : { pendingDays };
}

function withContext<T extends object>(body: T, context: EncryptionContext | undefined): T & { context?: EncryptionContext } {
  return context === undefined ? body : { ...body, context };
}

function toBase64(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Keyhold binary values must be Uint8Array (or Buffer)');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isItemError(value: unknown): value is BatchItemError {
  return isObject(value) && isObject(value.error) && typeof value.error.code === 'string';
}

/** A short cause for the message; AggregateErrors (dual-stack connect) have an empty message. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  let message = err.message;
  if (!message && err instanceof AggregateError && err.errors.length > 0) {
    message = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  }
  if (!message) message = err.name;
  return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
}
