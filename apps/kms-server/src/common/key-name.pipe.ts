import type { PipeTransform } from '@nestjs/common';
import { ApiError, KEY_NAME_PATTERN } from '@keyhold/contracts';

/** A name in a path that no key could have is simply a key that does not exist (and never reaches Postgres). */
export class KeyNamePipe implements PipeTransform<string, string> {
  transform(name: string): string {
    return requireKeyName(name);
  }
}

export function requireKeyName(name: string): string {
  if (!KEY_NAME_PATTERN.test(name)) throw new ApiError('KEY_NOT_FOUND', 'no key has that name; key names are 1-64 of a-z 0-9 - _ .');
  return name;
}
