import type { PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { ApiError } from '@keyhold/contracts';

/** Describes what is wrong with a request in words a caller can act on, without echoing values. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const where = issue.path.length ? issue.path.join('.') : 'body';
      if (issue.code === 'unrecognized_keys') return `${where}: unknown field(s) ${issue.keys.join(', ')}`;
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Validates a request part against a contracts schema. Schemas are strict: unknown fields are refused, which
 * is the whitelisting rule of the API.
 */
export class ZodPipe<T extends z.ZodType> implements PipeTransform<unknown, z.output<T>> {
  constructor(
    private readonly schema: T,
    private readonly what = 'request body',
  ) {}

  transform(value: unknown): z.output<T> {
    return parseRequestPart(this.schema, value, this.what);
  }
}

/** Validates `value` against a contracts schema, or throws VALIDATION_FAILED saying what is wrong. */
export function parseRequestPart<T extends z.ZodType>(schema: T, value: unknown, what = 'request body'): z.output<T> {
  const result = schema.safeParse(value ?? undefined);
  if (!result.success) {
    if (value === undefined || value === null) {
      throw new ApiError('VALIDATION_FAILED', `the ${what} is missing; send a JSON object`);
    }
    throw new ApiError('VALIDATION_FAILED', describeIssues(result.error));
  }
  return result.data;
}
