import { sha256Hex } from './key-id';

/** Annotation keys must be DNS fully qualified names (apimachinery IsFullyQualifiedDomainName). */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_ANNOTATIONS_BYTES = 32 * 1024;

/** The annotation every Encrypt adds: the plugin's envelope format, so a later format can be told apart. */
export const FORMAT_ANNOTATION = 'format.kms-v2.keyhold.dev';
export const FORMAT_VERSION = '1';

export function isFullyQualifiedDomainName(name: string): boolean {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed.length === 0 || trimmed.length > 253) return false;
  const labels = trimmed.split('.');
  if (labels.length < 2) return false;
  return labels.every((label) => label.length >= 1 && label.length <= 63 && LABEL.test(label));
}

/** Why an annotation map is not acceptable, or undefined when it is (apiserver's validateAnnotations). */
export function annotationsProblem(annotations: Record<string, Buffer>): string | undefined {
  let total = 0;
  for (const [key, value] of Object.entries(annotations)) {
    if (!isFullyQualifiedDomainName(key)) return `annotation key ${JSON.stringify(key.slice(0, 80))} is not a fully qualified domain name`;
    total += Buffer.byteLength(key, 'utf8') + value.length;
  }
  if (total > MAX_ANNOTATIONS_BYTES) return `annotations total ${total} bytes, more than ${MAX_ANNOTATIONS_BYTES}`;
  return undefined;
}

/**
 * A digest of the whole annotation map, independent of its order: sorted keys, each key and value
 * length-prefixed. It goes into the Keyhold encryption context, so a changed, missing or extra annotation
 * makes decryption fail.
 */
export function annotationsDigest(annotations: Record<string, Buffer>): string {
  const parts: Buffer[] = [];
  for (const key of Object.keys(annotations).sort()) {
    const keyBytes = Buffer.from(key, 'utf8');
    const value = annotations[key];
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(keyBytes.length, 0);
    lengths.writeUInt32BE(value.length, 4);
    parts.push(lengths, keyBytes, value);
  }
  return sha256Hex(Buffer.concat(parts));
}
