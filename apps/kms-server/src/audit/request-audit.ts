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

/**
 * The audit of one HTTP request. Created when the request arrives (for audited routes); services given it as
 * their AuditScope write the records of state changes inside their transactions; the `onSend` hook writes
 * the request's own record for everything else (reads, crypto operations, every refusal) and waits for it.
 */
export class RequestAudit implements AuditScope {
  /** Sequences written inside a transaction during this request (valid only if it succeeded). */
  readonly committed: number[] = [];

  constructor(
    private readonly request: AuditedRequest,
    readonly route: string,
    readonly operation: string,
    private readonly deps: RequestAuditDependencies,
  ) {}

  async record(manager: EntityManager, change: RecordedChange): Promise<void> {
    const sequences = await this.deps.trail.appendInTransaction(manager, [
      { ...this.base('success', null), operation: change.operation, keyName: change.keyName, keyVersion: change.keyVersion },
    ]);
    this.committed.push(...sequences);
  }

  /** The request's own records, from its route, parameters, body and answer. */
  async entries(statusCode: number, answer: unknown): Promise<AuditEntry[]> {
    const outcome: AuditOutcome = statusCode < 400 ? 'success' : statusCode < 500 ? 'refused' : 'error';
    const errorCode = outcome === 'success' ? null : (((answer as ErrorBody | undefined)?.error?.code as string | undefined) ?? `HTTP_${statusCode}`);
    const params = (this.request.params ?? {}) as Json;
    const body = isObject(this.request.body) ? this.request.body : {};
    const response = isObject(answer) ? answer : {};
    const keyName = asKeyName(params.name) ?? asKeyName(response.keyName) ?? asKeyName(response.name) ?? (this.operation === 'keys.create' ? asKeyName(body.name) : null);
    const versionParam = Number(params.version);
    if (outcome === 'success' && BATCH_ROUTES.has(this.route) && Array.isArray(body.items) && Array.isArray(response.results)) {
      const results = response.results as unknown[];
      return Promise.all(
        (body.items as unknown[]).map(async (item, index) => {
          const result = isObject(results[index]) ? results[index] : {};
          const itemError = isObject(result.error) ? (result.error.code as string) : null;
          return {
            ...this.base(itemError ? 'refused' : 'success', itemError),
            keyName,
            keyVersion: asVersion(result.keyVersion),
            contextHmac: await this.contextHmac(isObject(item) ? item.context : undefined),
          };
        }),
      );
    }
    return [
      {
        ...this.base(outcome, errorCode),
        keyName,
        keyVersion: asVersion(response.keyVersion) ?? (Number.isInteger(versionParam) && versionParam > 0 ? versionParam : null),
        contextHmac: await this.contextHmac(body.context),
      },
    ];
  }

  private base(outcome: AuditOutcome, errorCode: string | null): AuditEntry {
    return {
      time: this.deps.now().toISOString(),
      plane: this.deps.plane,
      actor: actorOf(this.request.user),
      operation: this.operation,
      keyName: null,
      keyVersion: null,
      outcome,
      errorCode,
      requestId: String(this.request.id),
      sourceAddress: this.request.ip ?? null,
      contextHmac: null,
    };
  }

  private async contextHmac(context: unknown): Promise<string | null> {
    if (!isObject(context) || !Object.values(context).every((value) => typeof value === 'string')) return null;
    const flat = context as Record<string, string>;
    const ready = this.deps.keys.contextHmacIfOpen(flat);
    return ready !== undefined ? ready : this.deps.keys.contextHmac(flat);
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
  fastify.addHook('onRequest', (request: AuditedRequest, _reply: FastifyReply, done: () => void) => {
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    const audited = deps.plane === 'service' ? !UNAUDITED_SERVICE_ROUTES.has(route) : request.url.startsWith('/api/');
    if (audited) request.keyholdAudit = new RequestAudit(request, route, table[route] ?? 'unknown-route', deps);
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
      const sequences = await deps.trail.append(await audit.entries(status, request.keyholdAuditPayload));
      if (sequences.length > 0) void reply.header(AUDIT_SEQUENCE_HEADER, sequenceHeader(sequences));
      return payload;
    } catch {
      // Fail closed: whatever was computed (a ciphertext, a plaintext) is dropped, never sent.
      const body: ErrorBody = {
        error: {
          code: 'UNAVAILABLE',
          message: 'the audit record of this request could not be written, so its result is withheld (audit fails closed); try again shortly',
          requestId: String(request.id),
        },
      };
      void reply.code(503).header('content-type', 'application/json; charset=utf-8').removeHeader(AUDIT_SEQUENCE_HEADER);
      void reply.removeHeader('content-length');
      return JSON.stringify(body);
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
