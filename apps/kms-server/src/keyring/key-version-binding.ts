import type { KeyMaterialBinding } from '@keyhold/crypto-core';
import type { Key } from '@keyhold/key-lifecycle';

/**
 * What a version's wrapped material is bound to: a row whose bytes are copied onto another key or version
 * fails to unwrap instead of silently becoming that key.
 */
export function keyVersionBinding(key: Pick<Key, 'id' | 'algorithm'>, version: number): KeyMaterialBinding {
  return { keyId: key.id, version, algorithm: key.algorithm, purpose: 'key-version' };
}
