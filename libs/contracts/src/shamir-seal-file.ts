import { z } from 'zod';

/**
 * The Shamir seal file (`master-key.shamir.json`): what Keyhold keeps to recognise the master key rebuilt from
 * Shamir shares. `kmsctl init` and `keyhold-rekey --to shamir` write it, the server reads it; this module is the
 * one definition of its shape for all of them. The crypto that fills it (split, check value) is crypto-core's
 * `splitMasterKey`. Never the key, never a share: this file alone opens nothing.
 */
export const SHAMIR_SEAL_FORMAT = 'keyhold-shamir-master-key';
/** The file's name inside the `--out` directory. */
export const SHAMIR_SEAL_FILE_NAME = 'master-key.shamir.json';
export const MIN_SHAMIR_SHARES = 2;
/** The shares' x coordinates are the bytes 1..255 (GF(256)). */
export const MAX_SHAMIR_SHARES = 255;

/**
 * Why N shares with threshold T cannot be issued, or null when they can. The one rule for the command lines
 * that issue shares (worded for their `--shares` / `--threshold` flags) and for the file's schema.
 */
export function shamirSplitProblem(shares: number, threshold: number): string | null {
  if (!Number.isInteger(shares) || shares < MIN_SHAMIR_SHARES || shares > MAX_SHAMIR_SHARES) {
    return `--shares must be an integer from ${MIN_SHAMIR_SHARES} to ${MAX_SHAMIR_SHARES}`;
  }
  if (!Number.isInteger(threshold) || threshold < MIN_SHAMIR_SHARES || threshold > shares) {
    return `--threshold must be an integer from ${MIN_SHAMIR_SHARES} to --shares (${shares})`;
  }
  return null;
}

export const shamirSealFileSchema = z
  .object({
    format: z.literal(SHAMIR_SEAL_FORMAT),
    /** The master key version the shares rebuild. */
    version: z.number().int().min(1),
    /** The share set's id; every share carries it, so a share of another set is refused at once. */
    setId: z.string().regex(/^[0-9a-f]{8}$/),
    shares: z.number(),
    threshold: z.number(),
    /** HMAC-SHA256 under the key (crypto-core's keyCheckValue), base64. */
    checkValue: z.string().min(1),
    createdAt: z.string(),
  })
  .strict()
  .refine((file) => shamirSplitProblem(file.shares, file.threshold) === null, 'impossible shares / threshold');

export type ShamirSealFile = z.infer<typeof shamirSealFileSchema>;

/** A new seal file for a freshly split master key: `verifier` is what crypto-core's `splitMasterKey` gives for it. */
export function newShamirSealFile(
  verifier: Pick<ShamirSealFile, 'setId' | 'shares' | 'threshold' | 'checkValue'>,
  createdAt = new Date(),
): ShamirSealFile {
  const { setId, shares, threshold, checkValue } = verifier;
  return { format: SHAMIR_SEAL_FORMAT, version: 1, setId, shares, threshold, checkValue, createdAt: createdAt.toISOString() };
}

/** The file's text as written: pretty JSON, one trailing newline. */
export function serializeShamirSealFile(file: ShamirSealFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Parses the file's text; null when it is not a valid Shamir seal file (the caller names the path). */
export function parseShamirSealFile(text: string): ShamirSealFile | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = shamirSealFileSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}
