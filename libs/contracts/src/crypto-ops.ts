import { z } from 'zod';

export const MAX_PLAINTEXT_BYTES = 32 * 1024;
export const MAX_BATCH_ITEMS = 1000;
export const MAX_RANDOM_BYTES = 1024;
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;
/** A ciphertext is at most the plaintext limit plus a generous header; anything longer is not ours. */
export const MAX_CIPHERTEXT_CHARS = 48 * 1024;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 (with padding) decoded to bytes, at most `maxBytes` long. */
export function base64Bytes(maxBytes: number, minBytes = 0) {
  return z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4, `must decode to at most ${maxBytes} bytes`)
    .regex(BASE64, 'must be standard base64')
    .transform((value) => Buffer.from(value, 'base64'))
    .refine((bytes) => bytes.length <= maxBytes, `must decode to at most ${maxBytes} bytes`)
    .refine((bytes) => bytes.length >= minBytes, `must decode to at least ${minBytes} bytes`);
}

/** A flat map of string to string; authenticated as associated data and never stored. */
export const encryptionContextSchema = z
  .record(z.string().max(256), z.string().max(4096))
  .refine((context) => Object.keys(context).length <= 64, 'at most 64 context entries');
export type EncryptionContext = z.infer<typeof encryptionContextSchema>;

const ciphertextSchema = z.string().min(1).max(MAX_CIPHERTEXT_CHARS);

export const encryptRequestSchema = z
  .object({ plaintext: base64Bytes(MAX_PLAINTEXT_BYTES), context: encryptionContextSchema.optional() })
  .strict();
export type EncryptRequest = z.input<typeof encryptRequestSchema>;

export const decryptRequestSchema = z
  .object({ ciphertext: ciphertextSchema, context: encryptionContextSchema.optional() })
  .strict();
export type DecryptRequest = z.input<typeof decryptRequestSchema>;

export const reencryptRequestSchema = decryptRequestSchema;
export type ReencryptRequest = DecryptRequest;

export const DATA_KEY_SIZES = [16, 24, 32] as const;
export const datakeyRequestSchema = z
  .object({
    bytes: z.union([z.literal(16), z.literal(24), z.literal(32)]).optional(),
    context: encryptionContextSchema.optional(),
    withPlaintext: z.boolean().optional(),
  })
  .strict();
export type DatakeyRequest = z.input<typeof datakeyRequestSchema>;

export const wrapRequestSchema = z
  .object({ key: base64Bytes(MAX_PLAINTEXT_BYTES, 1), context: encryptionContextSchema.optional() })
  .strict();
export type WrapRequest = z.input<typeof wrapRequestSchema>;

export const unwrapRequestSchema = decryptRequestSchema;
export type UnwrapRequest = DecryptRequest;

export const randomRequestSchema = z.object({ bytes: z.number().int().min(1).max(MAX_RANDOM_BYTES) }).strict();
export type RandomRequest = z.input<typeof randomRequestSchema>;

function batchOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item).min(1).max(MAX_BATCH_ITEMS) }).strict();
}
export const encryptBatchRequestSchema = batchOf(encryptRequestSchema);
export const decryptBatchRequestSchema = batchOf(decryptRequestSchema);
export const reencryptBatchRequestSchema = batchOf(reencryptRequestSchema);

export interface EncryptResponse {
  ciphertext: string;
  keyName: string;
  keyVersion: number;
}
export interface DecryptResponse {
  plaintext: string;
  keyName: string;
  keyVersion: number;
}
export interface DatakeyResponse {
  plaintext?: string;
  ciphertext: string;
  keyName: string;
  keyVersion: number;
}
export interface WrapResponse {
  ciphertext: string;
  keyName: string;
  keyVersion: number;
}
export interface UnwrapResponse {
  key: string;
  keyName: string;
  keyVersion: number;
}
export interface RandomResponse {
  random: string;
}
export interface BatchItemError {
  error: { code: string; message: string };
}
export interface BatchResponse<T> {
  results: Array<T | BatchItemError>;
}
