/**
 * The errors the SDK reports. None of their messages ever holds a request body (plaintext, key
 * material, ciphertext or context): they name the method, the path and the base URL at most.
 */

/**
 * The server answered with a non-2xx status. `code` is the server's `error.code` (see
 * `ERROR_HTTP_STATUS` in `@keyhold/contracts`); when the body was not a Keyhold error body (a proxy's
 * HTML page, say) it is `UNAVAILABLE` for 502/503/504 and `INTERNAL` otherwise.
 */
export class KeyholdApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId?: string;
  /** The request that failed, e.g. `POST` and `/v1/keys/payments/encrypt`. */
  readonly method: string;
  readonly path: string;

  constructor(init: { status: number; code: string; message: string; requestId?: string; method: string; path: string }) {
    super(init.message);
    this.name = 'KeyholdApiError';
    this.status = init.status;
    this.code = init.code;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
  }
}

/**
 * The request did not get an HTTP answer: connection refused, TLS handshake failure (an untrusted server
 * certificate, a refused client certificate), the connection dropped, the per-request deadline passed
 * (`timedOut`), the client's signal aborted it, or the client was closed. The original error is `cause`.
 */
export class KeyholdNetworkError extends Error {
  readonly timedOut: boolean;
  readonly baseUrl: string;
  readonly method: string;
  readonly path: string;

  constructor(init: { message: string; cause: unknown; timedOut: boolean; baseUrl: string; method: string; path: string }) {
    super(init.message, { cause: init.cause });
    this.name = 'KeyholdNetworkError';
    this.timedOut = init.timedOut;
    this.baseUrl = init.baseUrl;
    this.method = init.method;
    this.path = init.path;
  }
}

/**
 * One item of a batch failed (`{ error: { code, message } }` in `results`). It is returned in that item's
 * place, never thrown; the other items are unaffected. Test with `instanceof KeyholdItemError`.
 */
export class KeyholdItemError {
  readonly code: string;
  readonly message: string;

  constructor(code: string, message: string) {
    this.code = code;
    this.message = message;
  }
}
