/**
 * Every error on the wire is `{ error: { code, message, requestId } }`; the code tells a program what
 * happened and the HTTP status follows from it (one table, here, for server, SDK and console).
 */
export const ERROR_HTTP_STATUS = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  KEY_NOT_FOUND: 404,
  NOT_FOUND: 404,
  KEY_EXISTS: 409,
  INVALID_STATE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INVALID_CIPHERTEXT: 422,
  KEY_VERSION_DISABLED: 422,
  KEY_VERSION_DESTROYED: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  SEALED: 503,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_HTTP_STATUS;

export const ERROR_CODES = Object.keys(ERROR_HTTP_STATUS) as ErrorCode[];

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId?: string };
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_HTTP_STATUS[code];
}
