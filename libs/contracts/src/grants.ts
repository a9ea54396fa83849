import { z } from 'zod';
import { OPERATIONS, type Operation } from './operations';

/**
 * A grant gives identities matching `identity` the `operations` on keys whose names match `keys`.
 * Patterns are exact strings or globs where `*` matches any run of characters (`spiffe://prod/ns/*`).
 */
export interface Grant {
  identity: string;
  keys: string;
  operations: Operation[] | ['*'];
  expiresAt?: string;
  description?: string;
}

const patternSchema = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[\x21-\x7e]+$/, 'patterns are printable ASCII without spaces');

export const grantSchema = z
  .object({
    identity: patternSchema,
    keys: patternSchema,
    operations: z.union([
      z.tuple([z.literal('*')]),
      z.array(z.enum(OPERATIONS as [Operation, ...Operation[]])).min(1),
    ]),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    description: z.string().max(1024).optional(),
  })
  .strict();

export const grantsFileSchema = z.object({ grants: z.array(grantSchema).max(10_000) }).strict();
export type GrantsFile = z.infer<typeof grantsFileSchema>;

/** A grant as the admin API stores and lists it. */
export interface GrantView extends Grant {
  id: string;
  createdAt: string;
  updatedAt: string;
}
