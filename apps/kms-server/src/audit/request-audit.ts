import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EntityManager } from 'typeorm';
import { AUDIT_SEQUENCE_HEADER, type ErrorBody, KEY_NAME_PATTERN } from '@keyhold/contracts';
import type { AuditEntry, AuditOutcome, AuditPlane } from '@keyhold/crypto-core';
import type { AuditKeys } from './audit-keys';
import { ADMIN_OPERATIONS, BATCH_ROUTES, SERVICE_OPERATIONS, UNAUDITED_SERVICE_ROUTES } from './audit-operations';
import type { AuditScope, RecordedChange } from './audit-scope';
import type { AuditTrail } from './audit-trail';


type Json = Record<string, unknown>;
type AuditedRequest = FastifyRequest & { user?: unknown; keyholdAudit?: RequestAudit; keyholdAuditPayload?: unknown };

export interface RequestAuditDependencies {
  plane: Exclude<AuditPlane, 'system'>;
  trail: AuditTrail;
  keys: AuditKeys;
  now: () => Date;
}

/** What a request came to, in transport-neutral terms: the input of its audit records. */
export interface RequestOutcome {
  operation: string;
  /** A batch route: one record per item, in order. */
  batch: boolean;
  actor: string | null;
  requestId: string;
  sourceAddress: string | null;
  /** Path parameters: the key name and version when the route has them. */
  params: Record<string, unknown>;
  /** The key a route without one in its path names in its body (the ciphertext's own key on `/v1/decrypt`), when known. */
  keyName?: string | null;
  /** The parsed request body, if it got that far (contexts are read from it, never stored). */
  body: unknown;
  statusCode: number;
  /** The answer as an object (a result, or the contract's error body). */
  answer: unknown;
}

/**
 * Turns a request's outcome into its audit records and appends them (group commit), for both transports:
 * the Fastify hooks below and the crypto routes' own handler. `record` resolves with the value of the
 * `Keyhold-Audit-Sequence` header once the records are committed, or throws AuditUnavailableError.
 */
export class RequestRecorder {
  constructor(private readonly deps: RequestAuditDependencies) {}

  async record(outcome: RequestOutcome): Promise<string | null> {
    const entries = this.entries(outcome);
    const sequences = await this.deps.trail.append(Array.isArray(entries) ? entries : await entries);
    return sequences.length > 0 ? sequenceHeader(sequences) : null;
  }

  /** One entry for the request, or one per item of a successful batch. */
  entries(outcome: RequestOutcome): AuditEntry[] | Promise<AuditEntry[]> {
    const { statusCode, answer, operation, params } = outcome;
    const result: AuditOutcome = statusCode < 400 ? 'success' : statusCode < 500 ? 'refused' : 'error';
    const errorCode = result === 'success' ? null : (((answer as ErrorBody | undefined)?.error?.code as string | undefined) ?? `HTTP_${statusCode}`);
    const body = isObject(outcome.body) ? outcome.body : {};
    const response = isObject(answer) ? answer : {};
    const keyName = asKeyName(params.name) ?? asKeyName(outcome.keyName) ?? asKeyName(response.keyName) ?? asKeyName(response.name) ?? (operation === 'keys.create' ? asKeyName(body.name) : null);
    const versionParam = Number(params.version);
    if (result === 'success' && outcome.batch && Array.isArray(body.items) && Array.isArray(response.results)) {
      const results = response.results as unknown[];
      return Promise.all(
        (body.items as unknown[]).map(async (item, index) => {
          const itemResult = isObject(results[index]) ? results[index] : {};
          const itemError = isObject(itemResult.error) ? String(itemResult.error.code) : null;
          const contextHmac = await this.contextHmac(isObject(item) ? item.context : undefined);
          return this.base(outcome, itemError ? itemOutcome(itemError) : 'success', itemError, keyName, asVersion(itemResult.keyVersion), contextHmac);
        }),
      );
    }
    const keyVersion = asVersion(response.keyVersion) ?? (Number.isInteger(versionParam) && versionParam > 0 ? versionParam : null);
    const contextHmac = this.contextHmac(body.context);
    // Synchronous when the HMAC key is open (always, once unsealed): the hot path's record costs no extra turn.
    return typeof contextHmac === 'object' && contextHmac !== null
      ? contextHmac.then((hmac) => [this.base(outcome, result, errorCode, keyName, keyVersion, hmac)])
      : [this.base(outcome, result, errorCode, keyName, keyVersion, contextHmac)];
  }

  /** An entry, built in one object literal (one shape for every record). */
  base(
    outcome: Pick<RequestOutcome, 'operation' | 'actor' | 'requestId' | 'sourceAddress'>,
    result: AuditOutcome,
    errorCode: string | null,
    keyName: string | null = null,
    keyVersion: number | null = null,
    contextHmac: string | null = null,
  ): AuditEntry {
    return {
      time: this.deps.now().toISOString(),
      plane: this.deps.plane,
      actor: outcome.actor,
      operation: outcome.operation,
      keyName,
      keyVersion,
      outcome: result,
      errorCode,
      requestId: outcome.requestId,
      sourceAddress: outcome.sourceAddress,
      contextHmac,
    };
  }

  private contextHmac(context: unknown): string | null | Promise<string | null> {
    if (!isObject(context) || !Object.values(context).every((value) => typeof value === 'string')) return null;
    const flat = context as Record<string, string>;
    const ready = this.deps.keys.contextHmacIfOpen(flat);
    return ready !== undefined ? ready : this.deps.keys.contextHmac(flat);
  }
}

/** The answer sent instead of a result whose record could not be written. */
export function auditUnavailableBody(requestId: string): ErrorBody {
  return {
    error: {
      code: 'UNAVAILABLE',
      message: 'the audit record of this request could not be written, so its result is withheld (audit fails closed); try again shortly',
      requestId,
    },
  };
}

/**
 * The audit of one request on the Fastify routes. Created when the request arrives (for audited routes);
 * services given it as their AuditScope write the records of state changes inside their transactions; the
 * `onSend` hook writes the request's own record for everything else (reads, every refusal) and waits for it.
 */
export class RequestAudit implements AuditScope {
  /** Sequences written inside a transaction during this request (valid only if it succeeded). */
  readonly committed: number[] = [];

  constructor(
    private readonly request: AuditedRequest,
    readonly route: string,
    readonly operation: string,
    private readonly recorder: RequestRecorder,
    private readonly trail: AuditTrail,
  ) {}

  async record(manager: EntityManager, change: RecordedChange): Promise<void> {
    const sequences = await this.trail.appendInTransaction(manager, [
      this.recorder.base(
        { ...this.identity(), operation: change.operation, actor: change.actor ?? actorOf(this.request.user) },
        'success',
        null,
        change.keyName,
        change.keyVersion,
      ),
    ]);
    this.committed.push(...sequences);
  }

  outcome(statusCode: number, answer: unknown): RequestOutcome {
    return {
      ...this.identity(),
      batch: BATCH_ROUTES.has(this.route),
      params: (this.request.params ?? {}) as Json,
      body: this.request.body,
      statusCode,
      answer,
    };
  }

  private identity() {
    return { operation: this.operation, actor: actorOf(this.request.user), requestId: String(this.request.id), sourceAddress: this.request.ip ?? null };
  }
}

/**
 * Installs the audit on one listener: every audited request gets a RequestAudit, and its answer is held back
 * until its record is committed (group commit), then carries the sequence in `Keyhold-Audit-Sequence`. If the
 * record cannot be written the answer becomes 503 UNAVAILABLE instead: nothing is returned as a success.
 * This hook is the one place the hot path touches the audit trail.
 */
export function registerAuditHooks(fastify: FastifyInstance, deps: RequestAuditDependencies): void {
  const table = deps.plane === 'service' ? SERVICE_OPERATIONS : ADMIN_OPERATIONS;
  const recorder = new RequestRecorder(deps);
  fastify.addHook('onRequest', (request: AuditedRequest, _reply: FastifyReply, done: () => void) => {
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    const audited = deps.plane === 'service' ? !UNAUDITED_SERVICE_ROUTES.has(route) : request.url.startsWith('/api/');
    if (audited) request.keyholdAudit = new RequestAudit(request, route, table[route] ?? 'unknown-route', recorder, deps.trail);
    done();
  });
  // The answer as an object, before Fastify serialises it: the hook below reads key versions and error codes from it.
  fastify.addHook('preSerialization', (request: AuditedRequest, _reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => {
    request.keyholdAuditPayload = payload;
    done(null, payload);
  });
  fastify.addHook('onSend', async (request: AuditedRequest, reply: FastifyReply, payload: unknown) => {
    const audit = request.keyholdAudit;
    if (!audit) return payload;
    const status = reply.statusCode;
    if (status < 400 && audit.committed.length > 0) {
      void reply.header(AUDIT_SEQUENCE_HEADER, sequenceHeader(audit.committed));
      return payload;
    }
    try {
      const header = await recorder.record(audit.outcome(status, request.keyholdAuditPayload));
      if (header) void reply.header(AUDIT_SEQUENCE_HEADER, header);
      return payload;
    } catch {
      // Fail closed: whatever was computed is dropped, never sent.
      void reply.code(503).header('content-type', 'application/json; charset=utf-8').removeHeader(AUDIT_SEQUENCE_HEADER);
      void reply.removeHeader('content-length');
      return JSON.stringify(auditUnavailableBody(String(request.id)));
    }
  });
}

function sequenceHeader(sequences: readonly number[]): string {
  return sequences.length === 1 ? String(sequences[0]) : `${sequences[0]}-${sequences[sequences.length - 1]}`;
}

/** The service identity, or `admin:<id>` for an administrator; null before authentication succeeded. */
export function actorOf(user: unknown): string | null {
  if (!isObject(user)) return null;
  if (isObject(user.admin) && typeof user.admin.id === 'string') return `admin:${user.admin.id}`;
  if (typeof user.webauthnUserId === 'string' && typeof user.id === 'string') return `admin:${user.id}`;
  if (typeof user.fingerprintSha256 === 'string' && typeof user.id === 'string') return user.id;
  return null;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asKeyName(value: unknown): string | null {
  return typeof value === 'string' && KEY_NAME_PATTERN.test(value) ? value : null;
}

function asVersion(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

/** A batch item's own refusal or failure, by its error code. */
function itemOutcome(code: string): AuditOutcome {
  return code === 'INTERNAL' || code === 'UNAVAILABLE' || code === 'SEALED' ? 'error' : 'refused';
}
