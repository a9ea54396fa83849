import {
  type Operation,
  datakeyRequestSchema,
  decryptBatchRequestSchema,
  decryptRequestSchema,
  encryptBatchRequestSchema,
  encryptRequestSchema,
  randomRequestSchema,
  reencryptBatchRequestSchema,
  reencryptRequestSchema,
  unwrapRequestSchema,
  wrapRequestSchema,
} from '@keyhold/contracts';
import { ciphertextKeyName } from '@keyhold/crypto-core';
import type { OperationRequirement, ServiceIdentity } from '@keyhold/auth';
import type { z } from 'zod';
import type { CryptoOpsService } from './crypto-ops.service';

/** What a crypto route's handler gets: the key named in the path (null on `/v1/decrypt` and `/v1/random`), the validated body, the caller. */
export interface CryptoRouteInput<TBody> {
  keyName: string;
  body: TBody;
  caller: ServiceIdentity;
}

/**
 * One cryptographic operation of the service plane (api-v1.md, "Cryptographic operations"): the grant it
 * needs, the schema of its body, and the service call it makes. The transport (crypto-http-handler.ts) does
 * the rest, the same way for every route.
 */
export interface CryptoRoute<TSchema extends z.ZodType = z.ZodType> {
  requirement: OperationRequirement;
  schema: TSchema;
  run(crypto: CryptoOpsService, input: CryptoRouteInput<z.output<TSchema>>): Promise<unknown> | unknown;
  /** The key a route without one in its path names in its body (read from the JSON before validation), for the audit record. */
  bodyKeyName?(json: unknown): string | null;
}

function route<TSchema extends z.ZodType>(
  operation: Operation,
  schema: TSchema,
  run: CryptoRoute<TSchema>['run'],
  key: OperationRequirement['key'] = 'path',
): CryptoRoute {
  return { requirement: { operation, key }, schema, run: run as CryptoRoute['run'] };
}

const results = async <T>(pending: Promise<T[]>): Promise<{ results: T[] }> => ({ results: await pending });

/** `POST /v1/keys/:name/<action>`, by action. */
export const KEY_CRYPTO_ROUTES: ReadonlyMap<string, CryptoRoute> = new Map([
  ['encrypt', route('encrypt', encryptRequestSchema, (crypto, { keyName, body }) => crypto.encrypt(keyName, body.plaintext, body.context))],
  [
    'decrypt',
    route('decrypt', decryptRequestSchema, (crypto, { keyName, body, caller }) => crypto.decryptResponse(body.ciphertext, body.context, keyName, caller.id)),
  ],
  [
    'reencrypt',
    route('reencrypt', reencryptRequestSchema, (crypto, { keyName, body, caller }) => crypto.reencrypt(keyName, body.ciphertext, body.context, caller.id)),
  ],
  [
    'datakey',
    // The body is optional: no body asks for the defaults.
    route('datakey', datakeyRequestSchema.optional().transform((body) => body ?? {}), (crypto, { keyName, body }) =>
      crypto.generateDataKey(keyName, body.bytes ?? 32, body.context, body.withPlaintext ?? true),
    ),
  ],
  ['wrap', route('wrap', wrapRequestSchema, (crypto, { keyName, body }) => crypto.encrypt(keyName, body.key, body.context, 'wrapped-key'))],
  [
    'unwrap',
    route('unwrap', unwrapRequestSchema, async (crypto, { keyName, body, caller }) => {
      const result = await crypto.decrypt(body.ciphertext, body.context, keyName, caller.id, 'wrapped-key');
      return { key: result.plaintext.toString('base64'), keyName: result.keyName, keyVersion: result.keyVersion };
    }),
  ],
  [
    'encrypt/batch',
    route('encrypt', encryptBatchRequestSchema, (crypto, { keyName, body }) =>
      results(crypto.batch(body.items, (item) => crypto.encrypt(keyName, item.plaintext, item.context))),
    ),
  ],
  [
    'decrypt/batch',
    route('decrypt', decryptBatchRequestSchema, (crypto, { keyName, body, caller }) =>
      results(crypto.batch(body.items, (item) => crypto.decryptResponse(item.ciphertext, item.context, keyName, caller.id))),
    ),
  ],
  [
    'reencrypt/batch',
    route('reencrypt', reencryptBatchRequestSchema, (crypto, { keyName, body, caller }) =>
      results(crypto.batch(body.items, (item) => crypto.reencrypt(keyName, item.ciphertext, item.context, caller.id))),
    ),
  ],
]);

/** Routes outside any key's path, by exact path: the key is found in the ciphertext, or there is none. */
export const GLOBAL_CRYPTO_ROUTES: ReadonlyMap<string, CryptoRoute> = new Map([
  [
    '/v1/decrypt',
    {
      ...route('decrypt', decryptRequestSchema, (crypto, { body, caller }) => crypto.decryptResponse(body.ciphertext, body.context, null, caller.id), 'handler'),
      // The ciphertext's own key: its record names it whether the decryption succeeds or is refused.
      bodyKeyName: (json) => (typeof json === 'object' && json !== null ? ciphertextKeyName((json as { ciphertext?: unknown }).ciphertext) : null),
    },
  ],
  ['/v1/random', route('random', randomRequestSchema, (crypto, { body }) => crypto.random(body.bytes), 'handler')],
]);
