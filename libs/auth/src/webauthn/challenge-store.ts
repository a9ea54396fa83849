import { randomToken, sha256 } from '@keyhold/crypto-core';

/** How long an issued challenge can be answered: five minutes, the same as the ceremonies' timeout. */
export const CHALLENGE_TTL_MS = 5 * 60 * 1000;

/** What a challenge is for; a challenge issued for one purpose is never accepted for another. */
export type ChallengePurpose = string;

/** JSON-serialisable context kept with a challenge (e.g. the enrolment token's id); never a secret. */
export type ChallengeData = Record<string, unknown>;

export interface IssuedChallenge {
  /**
   * A public handle for the record that the caller may keep, e.g. in a cookie (InMemoryChallengeStore: 16
   * random base64url characters; an implementation keyed by the challenge alone may return the challenge).
   */
  id: string;
  /** The challenge to put in the WebAuthn options: base64url of 32 random bytes (or the caller's own). */
  challenge: string;
  expiresAt: Date;
}

export interface ConsumedChallenge {
  id: string;
  challenge: string;
  purpose: ChallengePurpose;
  data: ChallengeData;
}

/**
 * PORT: server-side WebAuthn challenges (quality invariant 5: each used at most once, only before it
 * expires).
 *
 * Guarantees an implementation must give:
 * - `issue` returns a fresh challenge of at least 128 random bits (unless the caller supplies one, e.g.
 *   `challengeForOperation`), remembered with its purpose and data for CHALLENGE_TTL_MS.
 * - `consume(idOrChallenge, purpose)` returns the record exactly once: only if it exists, has this
 *   purpose and has not expired (expiry is `now >= expiresAt`); it is spent by that call. Concurrent
 *   calls with one challenge: at most one gets it (in Postgres: one conditional UPDATE ... RETURNING).
 *   A call with the wrong purpose returns null and does not spend it.
 * - Expired records may be deleted at any time.
 */
export interface ChallengeStore {
  issue(purpose: ChallengePurpose, data?: ChallengeData, options?: { challenge?: string }): Promise<IssuedChallenge>;
  consume(idOrChallenge: string, purpose: ChallengePurpose): Promise<ConsumedChallenge | null>;
}

interface Entry extends ConsumedChallenge {
  expiresAtMs: number;
}

/**
 * ChallengeStore in process memory, for unit tests and single-process tools. Not for the server: it
 * forgets on restart and is not shared between instances (the server's is in Postgres).
 *
 * Bounded: beyond `maxEntries` live challenges the oldest are dropped, so a flood of option requests
 * costs memory only up to that bound.
 */
export class InMemoryChallengeStore implements ChallengeStore {
  private readonly byId = new Map<string, Entry>();
  private readonly idByChallenge = new Map<string, string>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(options: { ttlMs?: number; now?: () => Date | number; maxEntries?: number } = {}) {
    this.ttlMs = options.ttlMs ?? CHALLENGE_TTL_MS;
    const clock = options.now ?? (() => Date.now());
    this.now = () => {
      const value = clock();
      return typeof value === 'number' ? value : value.getTime();
    };
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  async issue(purpose: ChallengePurpose, data: ChallengeData = {}, options: { challenge?: string } = {}): Promise<IssuedChallenge> {
    if (typeof purpose !== 'string' || purpose.length === 0) throw new TypeError('a challenge needs a purpose');
    const challenge = options.challenge ?? randomToken(32);
    if (!/^[A-Za-z0-9_-]{22,128}$/.test(challenge)) throw new TypeError('a challenge is base64url of 16 to 96 bytes');
    this.sweep();
    // A challenge names one record: answering it must not be ambiguous (the Postgres table's primary key).
    if (this.idByChallenge.has(challenge)) throw new Error('this challenge was already issued and is still live');
    const id = randomToken(12);
    const expiresAtMs = this.now() + this.ttlMs;
    // Stored as JSON, like the Postgres store: data that would not survive the database fails here too.
    const copy = JSON.parse(JSON.stringify(data)) as ChallengeData;
    this.byId.set(id, { id, challenge, purpose, data: copy, expiresAtMs });
    this.idByChallenge.set(challenge, id);
    while (this.byId.size > this.maxEntries) this.remove(this.byId.keys().next().value as string);
    return { id, challenge, expiresAt: new Date(expiresAtMs) };
  }

  async consume(idOrChallenge: string, purpose: ChallengePurpose): Promise<ConsumedChallenge | null> {
    if (typeof idOrChallenge !== 'string') return null;
    const id = this.byId.has(idOrChallenge) ? idOrChallenge : this.idByChallenge.get(idOrChallenge);
    const entry = id === undefined ? undefined : this.byId.get(id);
    if (!entry) return null;
    if (this.now() >= entry.expiresAtMs) {
      this.remove(entry.id);
      return null;
    }
    if (entry.purpose !== purpose) return null;
    this.remove(entry.id);
    return { id: entry.id, challenge: entry.challenge, purpose: entry.purpose, data: entry.data };
  }

  /** Live (unexpired, unused) challenges: for tests. */
  get size(): number {
    this.sweep();
    return this.byId.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const entry of this.byId.values()) if (now >= entry.expiresAtMs) this.remove(entry.id);
  }

  private remove(id: string): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    this.byId.delete(id);
    this.idByChallenge.delete(entry.challenge);
  }
}

/**
 * The challenge a WebAuthn response says it answers, read from its clientDataJSON, or null when there is
 * none or the response is malformed (never throws). NOT verified: use it only to find the server-side
 * challenge record, then let the ceremony verify the response against that record's challenge.
 */
export function challengeOfResponse(response: unknown): string | null {
  try {
    const clientDataJSON = (response as { response?: { clientDataJSON?: unknown } } | null)?.response?.clientDataJSON;
    if (typeof clientDataJSON !== 'string' || clientDataJSON.length > 8192) return null;
    const parsed = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown } | null;
    const challenge = parsed?.challenge;
    return typeof challenge === 'string' && /^[A-Za-z0-9_-]{1,512}$/.test(challenge) ? challenge : null;
  } catch {
    return null;
  }
}

/** Domain separation: an approval challenge can never equal a hash made for anything else. */
const APPROVAL_PREFIX = 'keyhold approval v1\u0000';

/**
 * The WebAuthn challenge for approving one operation: base64url(SHA-256(UTF-8("keyhold approval v1\0" +
 * canonicalOperationJson))), 43 characters. An assertion over it approves exactly that canonical text
 * and nothing else: the caller makes the text canonical (sorted keys, no whitespace) and puts in it
 * everything that must not change (kind, target, parameters, requester, expiry, a nonce so that two
 * identical requests get different challenges). Single use is the caller's job (one approval per admin
 * per operation, recorded with the operation).
 */
export function challengeForOperation(canonicalOperationJson: string): string {
  if (typeof canonicalOperationJson !== 'string' || canonicalOperationJson.length === 0) {
    throw new TypeError('an approval challenge needs the canonical operation');
  }
  return sha256(APPROVAL_PREFIX + canonicalOperationJson).toString('base64url');
}
