// The admin API over fetch: same origin, the session cookie (HttpOnly, set by the server), and the CSRF token,
// kept in memory only, sent as x-csrf-token on every change. A 401 on a signed-in call hands over to `onUnauthorized`.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let unauthorizedHandler: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function onUnauthorized(handler: () => void): void {
  unauthorizedHandler = handler;
}

interface Options {
  body?: unknown;
  /** A public route (enrolment, sign-in): its 401 is an answer to show, not an expired session. */
  public?: boolean;
  /**
   * A request carrying a step-up (a passkey confirmation): its 401 is a refused confirmation to show, not an
   * expired session (the step-up options it answers were just given to this session).
   */
  stepUp?: boolean;
}

export async function api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, options: Options = {}): Promise<T> {
  const text = await send(method, path, options, 'application/json');
  try {
    return (text ? JSON.parse(text) : undefined) as T;
  } catch {
    return undefined as T;
  }
}

/** A GET whose answer is a file's text (an audit export), with the same errors as `api`. */
export function apiText(path: string): Promise<string> {
  return send('GET', path, {}, '*/*');
}

async function send(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, options: Options, accept: string): Promise<string> {
  const headers: Record<string, string> = { accept };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'Keyhold could not be reached; check your connection and try again.');
  }
  const text = response.status === 204 ? '' : await response.text();
  if (response.ok) return text;
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  const error = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
  const failure = new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? `the server answered ${response.status}`);
  if (response.status === 401 && !options.public && !options.stepUp) {
    csrfToken = null;
    unauthorizedHandler?.();
  }
  throw failure;
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) {
    if (error.name === 'NotAllowedError') return 'The passkey prompt was cancelled or timed out. Try again.';
    return error.message;
  }
  return String(error);
}

export const keyPath = (name: string) => `/api/v1/keys/${encodeURIComponent(name)}`;
