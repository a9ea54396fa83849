import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Logger } from '@nestjs/common';
import secureJson from 'secure-json-parse';
import { AUDIT_SEQUENCE_HEADER, ApiError, MAX_REQUEST_BODY_BYTES } from '@keyhold/contracts';
import {
  type CertificateClock,
  type GrantPolicySource,
  type RateLimiter,
  type RevocationCheck,
  type ServiceIdentity,
  authenticateConnection,
  authorizeOperation,
  enforceRateLimit,
} from '@keyhold/auth';
import { errorAnswer } from '../common/api-error.filter';
import { requireKeyName } from '../common/key-name.pipe';
import { parseRequestPart } from '../common/zod-body.pipe';
import { type RequestRecorder, auditUnavailableBody } from '../audit/request-audit';
import type { ServerMetrics } from '../metrics/server-metrics';
import type { SealState } from '../seal/seal-state';
import { sealedError } from '../seal/seal-state';
import type { CryptoOpsService } from './crypto-ops.service';
import { type CryptoRoute, GLOBAL_CRYPTO_ROUTES, KEY_CRYPTO_ROUTES } from './crypto-routes';

export interface CryptoHttpDependencies {
  crypto: CryptoOpsService;
  grants: GrantPolicySource;
  rateLimiter: RateLimiter;
  sealState: SealState;
  certificateClock: CertificateClock;
  revocations: RevocationCheck;
  /** The same generator Fastify uses, so request ids stay one sequence per process. */
  nextRequestId: () => string;
  /** True once the server is shutting down: new requests get 503 and the connection closes. */
  closing: () => boolean;
  /** The audit trail (null only with KEYHOLD_AUDIT=off in development). */
  audit: RequestRecorder | null;
  metrics: ServerMetrics;
}

const KEY_ROUTE_PATH = /^\/v1\/keys\/([^/]+)\/([a-z]+(?:\/batch)?)$/;
const JSON_MEDIA_TYPE = /^application\/json\s*(?:;|$)/i;

/**
 * The service plane's cryptographic operations, served straight from Node's request event rather than
 * through Fastify's and Nest's generic pipeline. These routes are the hot path (authorise, key from the
 * cache, AEAD, answer); the generic pipeline cost several times the cryptography itself (docs/benchmarks.md).
 * Every step is the one the Nest routes use, called directly: the same connection identity, rate limit,
 * grant check, seal check, body limit and media types, schema validation, error shape and request ids.
 * Anything that is not a crypto route goes on to Fastify untouched.
 */
export class CryptoHttpHandler {
  private readonly logger = new Logger('CryptoHttpHandler');

  constructor(private readonly deps: CryptoHttpDependencies) {}

  /** Serves the request when it is a crypto route (true); otherwise leaves it for Fastify (false). */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    if (request.method !== 'POST' || !request.url) return false;
    const query = request.url.indexOf('?');
    const path = query === -1 ? request.url : request.url.slice(0, query);
    const global = GLOBAL_CRYPTO_ROUTES.get(path);
    if (global) {
      void this.serve(request, response, global, null, false);
      return true;
    }
    const match = KEY_ROUTE_PATH.exec(path);
    const route = match ? KEY_CRYPTO_ROUTES.get(match[2]) : undefined;
    if (!match || !route) return false;
    void this.serve(request, response, route, match[1], match[2].endsWith('/batch'));
    return true;
  }

  private async serve(request: IncomingMessage, response: ServerResponse, route: CryptoRoute, encodedKeyName: string | null, batch: boolean): Promise<void> {
    const started = performance.now();
    const requestId = this.deps.nextRequestId();
    let caller: ServiceIdentity | null = null;
    let pathKeyName = '';
    let bodyKeyName: string | null = null;
    let body: unknown;
    let answer: { status: number; body: unknown; headers: Record<string, string> };
    try {
      if (this.deps.closing()) throw new ApiError('UNAVAILABLE', 'this instance is shutting down; retry on another');
      caller = authenticateConnection(request.socket as TLSSocket, this.deps.certificateClock, this.deps.revocations);
      if (this.deps.rateLimiter.enabled) enforceRateLimit(this.deps.rateLimiter, caller);
      // The name is checked before anything uses it: a name no key could have is 404 KEY_NOT_FOUND for
      // everyone (nothing to learn from it), and never reaches the grant check, its globs or its memo.
      pathKeyName = encodedKeyName === null ? '' : decodePathSegment(encodedKeyName);
      const keyName = encodedKeyName === null ? '' : requireKeyName(pathKeyName);
      try {
        authorizeOperation(this.deps.grants.current(), caller, route.requirement, keyName);
      } catch (refusal) {
        // A caller with no grant for the operation anywhere is refused before its body is read; the record
        // still names the key the body's ciphertext is for (read within the usual limits, never trusted further).
        if (route.bodyKeyName) bodyKeyName = await keyNameOfBody(request, route.bodyKeyName);
        throw refusal;
      }
      if (this.deps.sealState.sealed) throw sealedError();
      const json = await readJsonBody(request);
      if (route.bodyKeyName) bodyKeyName = route.bodyKeyName(json);
      // The body arrives when the client sends it, possibly long after the checks above: a certificate revoked,
      // a grant removed or a seal meanwhile applies to this request as well.
      caller = authenticateConnection(request.socket as TLSSocket, this.deps.certificateClock, this.deps.revocations);
      authorizeOperation(this.deps.grants.current(), caller, route.requirement, keyName);
      if (this.deps.sealState.sealed) throw sealedError();
      body = parseRequestPart(route.schema, json);
      answer = { status: 200, body: await route.run(this.deps.crypto, { keyName, body, caller }), headers: {} };
    } catch (error) {
      answer = errorAnswer(error, requestId, this.logger);
    }
    // The hot path's one call into the audit trail: the answer waits for its record's group commit, and
    // without a committed record nothing but 503 leaves (docs/audit.md).
    if (this.deps.audit) {
      try {
        const sequence = await this.deps.audit.record({
          operation: route.requirement.operation,
          batch,
          actor: caller?.id ?? null,
          requestId,
          sourceAddress: request.socket.remoteAddress ?? null,
          params: { name: pathKeyName },
          keyName: bodyKeyName,
          body,
          statusCode: answer.status,
          answer: answer.body,
        });
        if (sequence) answer.headers[AUDIT_SEQUENCE_HEADER] = sequence;
      } catch {
        answer = { status: 503, body: auditUnavailableBody(requestId), headers: {} };
      }
    }
    send(response, answer.status, JSON.stringify(answer.body), requestId, answer.headers);
    this.deps.metrics.cryptoAnswered(batch ? `${route.requirement.operation}.batch` : route.requirement.operation, answer.status, (performance.now() - started) / 1000);
  }
}

function send(response: ServerResponse, status: number, json: string, requestId: string, headers?: Record<string, string>): void {
  if (response.headersSent) return;
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
    'x-request-id': requestId,
  });
  response.end(json);
}

/** The key a refused request's body names, for its record: null if the body cannot be read or names none. */
async function keyNameOfBody(request: IncomingMessage, bodyKeyName: (json: unknown) => string | null): Promise<string | null> {
  try {
    return bodyKeyName(await readJsonBody(request));
  } catch {
    return null;
  }
}

/** A path segment as Fastify decodes route parameters; one that does not decode names no key. */
function decodePathSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/**
 * The request's JSON body, with the rules Fastify applies on the other routes: no body and no content type
 * is "no body" (undefined); a body needs `application/json` (415 otherwise); at most 64 KiB (413); an empty
 * or malformed document, or one with `__proto__`/`constructor.prototype` keys, is refused (400).
 */
async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const contentType = request.headers['content-type'];
  const declaredLength = request.headers['content-length'];
  const hasBody = request.headers['transfer-encoding'] !== undefined || (declaredLength !== undefined && declaredLength !== '0');
  if (contentType === undefined) {
    if (!hasBody) return undefined;
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json');
  }
  if (!JSON_MEDIA_TYPE.test(contentType)) throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json');
  if (declaredLength !== undefined && Number(declaredLength) > MAX_REQUEST_BODY_BYTES) throw payloadTooLarge();
  const text = await readText(request);
  if (text.length === 0) throw new ApiError('VALIDATION_FAILED', 'the request body is empty; send a JSON object');
  try {
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch {
    throw new ApiError('VALIDATION_FAILED', 'the request body is not valid JSON');
  }
}

function readText(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_REQUEST_BODY_BYTES) {
        request.off('data', onData);
        // Node discards the rest of the body once the answer has been sent; the connection stays usable.
        reject(payloadTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    request.once('error', reject);
  });
}

const payloadTooLarge = () => new ApiError('PAYLOAD_TOO_LARGE', 'the request body is over the 64 KiB limit');
