import { readFileSync } from 'node:fs';
import { type Grant, grantsFileSchema } from '@keyhold/contracts';
import { describeIssues } from '../common/zod-body.pipe';

export class GrantsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrantsFileError';
  }
}

/** Reads and validates a grants file; a bad file stops start-up with a message that says where it is wrong. */
export function readGrantsFile(path: string): Grant[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new GrantsFileError(`cannot read grants file ${path}: ${(error as Error).message}`);
  }
  const parsed = grantsFileSchema.safeParse(raw);
  if (!parsed.success) throw new GrantsFileError(`grants file ${path} is invalid: ${describeIssues(parsed.error)}`);
  return parsed.data.grants as Grant[];
}
