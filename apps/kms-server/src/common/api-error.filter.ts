import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type ErrorBody, type ErrorCode } from '@keyhold/contracts';
import { KeyLifecycleError } from '@keyhold/key-lifecycle';
import { InvalidCiphertextError, KeyUnwrapError } from '@keyhold/crypto-core';
import { RateLimitedError } from '@keyhold/auth';
import { isDatabaseUnavailable } from '../database/database-errors';
import { KeyExistsError } from '../persistence/typeorm-key.repository';

/** Fastify's own refusals (body parsing, limits) mapped to the contract's codes. */
const FASTIFY_ERRORS: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE', 'the request body is over the 64 KiB limit'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['VALIDATION_FAILED', 'the request body is empty; send a JSON object'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['VALIDATION_FAILED', 'the content-length does not match the body'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['VALIDATION_FAILED', 'the request body is not valid JSON'],
};

/** Turns anything thrown while handling a request into the one error shape of the API. Never leaks internals. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof KeyLifecycleError) return new ApiError(error.code, error.message);
  if (error instanceof InvalidCiphertextError) return new ApiError('INVALID_CIPHERTEXT', error.message);
  if (error instanceof KeyUnwrapError) {
    return new ApiError(
      'INTERNAL',
      'the stored material of this key failed its integrity check (altered or moved in the database); see the server log',
    );
  }
  if (error instanceof KeyExistsError) return new ApiError('KEY_EXISTS', error.message);
  const fastifyCode = (error as { code?: unknown })?.code;
  if (typeof fastifyCode === 'string' && FASTIFY_ERRORS[fastifyCode]) {
    const [code, message] = FASTIFY_ERRORS[fastifyCode];
    return new ApiError(code, message);
  }
  if (error instanceof SyntaxError) return new ApiError('VALIDATION_FAILED', 'the request body is not valid JSON');
  if (error instanceof HttpException) {
    const status = error.getStatus();
    if (status === 404) return new ApiError('NOT_FOUND', 'no such endpoint');
    if (status === 405) return new ApiError('NOT_FOUND', 'method not allowed on this endpoint');
    if (status === 413) return new ApiError('PAYLOAD_TOO_LARGE', 'the request body is over the 64 KiB limit');
    if (status === 415) return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json');
    if (status >= 400 && status < 500) return new ApiError('VALIDATION_FAILED', error.message);
  }
  if (isDatabaseUnavailable(error)) {
    return new ApiError('UNAVAILABLE', 'the database is unreachable; try again shortly');
  }
  return new ApiError('INTERNAL', 'an internal error occurred; the request id identifies it in the server log');
}

/** The answer to a failed request: status, the contract's error body, and headers (Retry-After). */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

/**
 * Shapes a failure into the API's answer and logs what an operator must see (internal errors and outages,
 * by request id, never the request's content). One place for both transports: Nest's filter and the crypto
 * routes' own.
 */
export function errorAnswer(error: unknown, requestId: string, logger: Pick<Logger, 'error'>): ErrorAnswer {
  const apiError = toApiError(error);
  if (apiError.code === 'INTERNAL' || apiError.code === 'UNAVAILABLE') {
    const cause = error instanceof Error ? { name: error.name, message: error.message } : { name: typeof error };
    logger.error({ msg: 'request failed', requestId, code: apiError.code, err: cause });
  }
  const headers: Record<string, string> = {};
  if (apiError instanceof RateLimitedError) headers['retry-after'] = String(apiError.retryAfterSeconds);
  return { status: apiError.status, body: { error: { code: apiError.code, message: apiError.message, requestId } }, headers };
}

@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiErrorFilter');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const answer = errorAnswer(error, request.id, this.logger);
    void http
      .getResponse<FastifyReply>()
      .status(answer.status)
      .headers(answer.headers)
      .header('content-type', 'application/json; charset=utf-8')
      .send(answer.body);
  }
}
