import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { ApiError } from '@keyhold/contracts';
import type { ServiceIdentity } from './certificate-identity';

export interface RateLimit {
  /** Sustained requests per second per identity; 0 turns limiting off. */
  perSecond: number;
  /** Requests an idle identity may make at once. */
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const MAX_TRACKED_IDENTITIES = 100_000;

/**
 * A token bucket per identity, in memory: one noisy service cannot starve the others. Per instance, so the
 * effective limit across N instances is N times this; good enough to stop a runaway client.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.limit.perSecond > 0;
  }

  /** Takes one token; returns 0 when allowed, else the seconds until the next token. */
  take(identity: string): number {
    if (!this.enabled) return 0;
    const now = this.now();
    let bucket = this.buckets.get(identity);
    if (!bucket) {
      if (this.buckets.size >= MAX_TRACKED_IDENTITIES) this.buckets.clear();
      bucket = { tokens: this.limit.burst, updatedAt: now };
      this.buckets.set(identity, bucket);
    } else {
      const refill = ((now - bucket.updatedAt) / 1000) * this.limit.perSecond;
      bucket.tokens = Math.min(this.limit.burst, bucket.tokens + refill);
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.limit.perSecond));
  }
}

export const RATE_LIMITER = Symbol('RATE_LIMITER');

/** 429 RATE_LIMITED with a Retry-After: too many requests from one identity, or (`reason`) of one costly kind. */
export class RateLimitedError extends ApiError {
  constructor(
    readonly retryAfterSeconds: number,
    reason = 'too many requests from this identity',
  ) {
    super('RATE_LIMITED', `${reason}; retry in ${retryAfterSeconds} s`);
  }
}

@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(@Inject(RATE_LIMITER) private readonly limiter: RateLimiter) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.limiter.enabled) return true;
    const identity = context.switchToHttp().getRequest<{ user?: ServiceIdentity }>().user;
    if (!identity) return true;
    enforceRateLimit(this.limiter, identity);
    return true;
  }
}

/** Takes one of the identity's tokens, or throws RATE_LIMITED with the seconds to wait. */
export function enforceRateLimit(limiter: RateLimiter, identity: ServiceIdentity): void {
  const retryAfter = limiter.take(identity.id);
  if (retryAfter > 0) throw new RateLimitedError(retryAfter);
}
