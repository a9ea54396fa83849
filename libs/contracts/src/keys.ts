import { z } from 'zod';

export const KEY_ALGORITHMS = ['aes-256-gcm'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export const KEY_STATES = ['enabled', 'disabled', 'pending_destruction', 'destroyed'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** 1–64 of a-z 0-9 - _ . starting with a letter or digit. */
export const KEY_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const MIN_PENDING_DAYS = 7;
export const MAX_PENDING_DAYS = 30;
export const DEFAULT_PENDING_DAYS = 30;
export const MAX_ROTATION_PERIOD_DAYS = 3650;

export const keyNameSchema = z
  .string()
  .regex(KEY_NAME_PATTERN, 'must be 1-64 characters of a-z 0-9 - _ . starting with a letter or digit');

const labelKeySchema = z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/, 'label keys are 1-63 of a-z 0-9 . _ / -');
export const labelsSchema = z
  .record(labelKeySchema, z.string().max(256))
  .refine((labels) => Object.keys(labels).length <= 64, 'at most 64 labels');

const rotationPeriodDaysSchema = z.number().int().min(1).max(MAX_ROTATION_PERIOD_DAYS);

export const createKeyRequestSchema = z
  .object({
    name: keyNameSchema,
    algorithm: z.enum(KEY_ALGORITHMS),
    description: z.string().max(1024).optional(),
    rotationPeriodDays: rotationPeriodDaysSchema.nullable().optional(),
    labels: labelsSchema.optional(),
  })
  .strict();
export type CreateKeyRequest = z.infer<typeof createKeyRequestSchema>;

export const updateKeyRequestSchema = z
  .object({
    description: z.string().max(1024).nullable().optional(),
    rotationPeriodDays: rotationPeriodDaysSchema.nullable().optional(),
    minDecryptionVersion: z.number().int().min(1).optional(),
    labels: labelsSchema.optional(),
  })
  .strict();
export type UpdateKeyRequest = z.infer<typeof updateKeyRequestSchema>;

export const scheduleDestructionRequestSchema = z
  .object({ pendingDays: z.number().int().min(MIN_PENDING_DAYS).max(MAX_PENDING_DAYS).optional() })
  .strict();
export type ScheduleDestructionRequest = z.infer<typeof scheduleDestructionRequestSchema>;

export const listKeysQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    cursor: z.string().max(256).optional(),
  })
  .strict();
export type ListKeysQuery = z.infer<typeof listKeysQuerySchema>;

export const versionParamSchema = z.coerce.number().int().min(1).max(2_147_483_647);

export interface KeyVersionView {
  version: number;
  state: KeyState;
  createdAt: string;
  destroyAt: string | null;
  destroyedAt: string | null;
  encryptions: number;
  lastUsedAt: string | null;
}

export interface KeyView {
  name: string;
  algorithm: KeyAlgorithm;
  description: string | null;
  state: KeyState;
  primaryVersion: number;
  minDecryptionVersion: number;
  rotationPeriodDays: number | null;
  nextRotationAt: string | null;
  destroyAt: string | null;
  createdAt: string;
  updatedAt: string;
  labels: Record<string, string>;
  encryptions: number;
  versions: KeyVersionView[];
}

export interface KeyListView {
  keys: KeyView[];
  nextCursor: string | null;
}

/** How many days of usage history one request may ask for. */
export const MAX_USAGE_HISTORY_DAYS = 366;
export const usageHistoryQuerySchema = z
  .object({ days: z.coerce.number().int().min(1).max(MAX_USAGE_HISTORY_DAYS).optional() })
  .strict();
export type UsageHistoryQuery = z.infer<typeof usageHistoryQuerySchema>;

/** Encryptions per version per UTC day (days without any are left out), oldest first. */
export interface KeyUsageHistoryView {
  keyName: string;
  /** First day covered (YYYY-MM-DD, UTC). */
  since: string;
  days: Array<{ day: string; version: number; encryptions: number }>;
}
