import { status } from '@grpc/grpc-js';
import { KeyholdApiError, KeyholdNetworkError } from '@keyhold/client-sdk';

/**
 * An error with the gRPC status the plugin answers. `transient` marks what a Keyhold outage looks like
 * (unreachable, timed out, sealed, rate limited, 5xx): it makes Status report a non-"ok" healthz rather
 * than a gRPC error (see the Status policy in docs/kubernetes.md).
 */
export class PluginError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly transient = false,
  ) {
    super(message);
    this.name = 'PluginError';
  }
}

export const invalid = (message: string): PluginError => new PluginError(status.INVALID_ARGUMENT, message);

/** Maps what the SDK threw to a gRPC status. Messages never carry a request body (the SDK guarantees it). */
export function fromUpstream(error: unknown, operation: string): PluginError {
  if (error instanceof PluginError) return error;
  if (error instanceof KeyholdNetworkError) {
    return error.timedOut
      ? new PluginError(status.DEADLINE_EXCEEDED, `Keyhold ${operation} timed out`, true)
      : new PluginError(status.UNAVAILABLE, `Keyhold unreachable during ${operation}: ${error.message}`, true);
  }
  if (error instanceof KeyholdApiError) {
    const what = `Keyhold ${operation}: ${error.code}: ${error.message}`;
    switch (error.code) {
      case 'INVALID_CIPHERTEXT':
        return new PluginError(status.INVALID_ARGUMENT, `ciphertext, key_id or annotations do not authenticate (${what})`);
      case 'VALIDATION_FAILED':
      case 'PAYLOAD_TOO_LARGE':
        return new PluginError(status.INVALID_ARGUMENT, what);
      case 'KEY_VERSION_DISABLED':
      case 'KEY_VERSION_DESTROYED':
      case 'INVALID_STATE':
      case 'KEY_NOT_FOUND':
        return new PluginError(status.FAILED_PRECONDITION, what);
      case 'FORBIDDEN':
      case 'UNAUTHENTICATED':
        return new PluginError(status.PERMISSION_DENIED, what);
      case 'RATE_LIMITED':
        return new PluginError(status.RESOURCE_EXHAUSTED, what, true);
      case 'SEALED':
      case 'UNAVAILABLE':
        return new PluginError(status.UNAVAILABLE, what, true);
      default:
        return error.status >= 500
          ? new PluginError(status.UNAVAILABLE, what, true)
          : new PluginError(status.INTERNAL, what);
    }
  }
  return new PluginError(status.INTERNAL, `unexpected error during ${operation}: ${error instanceof Error ? error.message : String(error)}`);
}
