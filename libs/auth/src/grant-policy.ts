import { ApiError, KEY_NAME_PATTERN, OPERATIONS, type Grant, type Operation } from '@keyhold/contracts';

interface CompiledGrant {
  identity: RegExp;
  keys: RegExp;
  operations: ReadonlySet<Operation> | 'all';
  expiresAt: number;
}

interface Decision {
  operations: ReadonlySet<Operation>;
  /** The decision holds until the earliest expiry among the grants that made it. */
  validUntil: number;
}

const MAX_MEMOISED_DECISIONS = 100_000;
const ALL_OPERATIONS: ReadonlySet<Operation> = new Set(OPERATIONS);

/** `*` matches any run of characters; everything else is literal. */
export function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

/**
 * Deny by default: an identity may do an operation on a key only when some unexpired grant matches all three.
 * Decisions are memoised per (identity, key) so that the hot path costs one map lookup.
 */
export class GrantPolicy {
  private readonly grants: CompiledGrant[];
  private readonly decisions = new Map<string, Decision>();

  constructor(
    grants: readonly Grant[],
    private readonly now: () => number = Date.now,
  ) {
    this.grants = grants.map((grant) => ({
      identity: globToRegExp(grant.identity),
      keys: globToRegExp(grant.keys),
      operations: grant.operations[0] === '*' ? 'all' : new Set(grant.operations as Operation[]),
      expiresAt: grant.expiresAt ? Date.parse(grant.expiresAt) : Number.POSITIVE_INFINITY,
    }));
  }

  /**
   * What the identity may do on the key. Only decisions about names a key can have (KEY_NAME_PATTERN) are
   * memoised: a name no key could have is decided afresh each time and never takes room in the memo, so
   * callers cannot fill it with made-up names (transports refuse such names before asking anyway).
   */
  operationsOn(identity: string, keyName: string): ReadonlySet<Operation> {
    const now = this.now();
    if (!KEY_NAME_PATTERN.test(keyName)) return this.decide(identity, keyName, now).operations;
    const memoKey = `${identity}\u0000${keyName}`;
    const memo = this.decisions.get(memoKey);
    if (memo && memo.validUntil > now) return memo.operations;
    const decision = this.decide(identity, keyName, now);
    if (this.decisions.size >= MAX_MEMOISED_DECISIONS) this.decisions.clear();
    this.decisions.set(memoKey, decision);
    return decision.operations;
  }

  /** How many decisions are memoised (for monitoring and tests). */
  get memoisedDecisions(): number {
    return this.decisions.size;
  }

  isAllowed(identity: string, operation: Operation, keyName: string): boolean {
    return this.operationsOn(identity, keyName).has(operation);
  }

  /**
   * Throws unless allowed. An identity with no grant at all on the key learns nothing about it (404, as if it
   * did not exist); one that may see the key but not do this gets 403.
   */
  authorize(identity: string, operation: Operation, keyName: string): void {
    const operations = this.operationsOn(identity, keyName);
    if (operations.has(operation)) return;
    if (operations.size === 0 && operation !== 'create') {
      throw new ApiError('KEY_NOT_FOUND', `key '${keyName}' does not exist`);
    }
    throw new ApiError('FORBIDDEN', `'${identity}' has no grant for ${operation} on key '${keyName}'`);
  }

  /** Whether any unexpired grant gives the identity this operation on some key. */
  allowsSomewhere(identity: string, operation: Operation): boolean {
    const now = this.now();
    return this.grants.some(
      (grant) =>
        grant.expiresAt > now &&
        (grant.operations === 'all' || grant.operations.has(operation)) &&
        grant.identity.test(identity),
    );
  }

  private decide(identity: string, keyName: string, now: number): Decision {
    const operations = new Set<Operation>();
    let validUntil = Number.POSITIVE_INFINITY;
    let all = false;
    for (const grant of this.grants) {
      if (grant.expiresAt <= now || !grant.identity.test(identity) || !grant.keys.test(keyName)) continue;
      validUntil = Math.min(validUntil, grant.expiresAt);
      if (grant.operations === 'all') all = true;
      else grant.operations.forEach((operation) => operations.add(operation));
    }
    return { operations: all ? ALL_OPERATIONS : operations, validUntil };
  }
}


