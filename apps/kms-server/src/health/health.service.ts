import type { DataSource } from 'typeorm';
import type { MasterKey } from '../seal/master-key';
import type { SealState } from '../seal/seal-state';

export interface HealthReport {
  /** `sealed`: reachable but refusing key operations until unsealed (answered with 503, like `degraded`). */
  status: 'ok' | 'degraded' | 'sealed';
  database: 'ok' | 'unreachable';
  sealed: boolean;
  masterKeyProtection: MasterKey['protection'];
  /** The master-key version new material is wrapped under (null while sealed), and whether this instance is rewrapping. */
  masterKey?: { version: number | null; rewrap: 'idle' | 'running' };
  /**
   * Whether this instance's latest attempt to sign an audit checkpoint succeeded, or was refused because the chain
   * since the last checkpoint did not verify (a tamper alarm: docs/audit.md). Absent with the audit trail off.
   * It does not change `status`: the instance still serves; the alarm is for whoever monitors it.
   */
  audit?: { signing: 'ok' | 'refused' };
}

export interface HealthSources {
  masterKey?: () => NonNullable<HealthReport['masterKey']>;
  audit?: () => NonNullable<HealthReport['audit']>;
}

const DATABASE_CHECK_TTL_MS = 2000;

/** Health for load balancers and operators; the database probe is cached so polling cannot load Postgres. */
export class HealthService {
  private lastCheck: { at: number; ok: boolean } | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly seal: SealState,
    private readonly sources: HealthSources = {},
  ) {}

  async report(): Promise<HealthReport> {
    const databaseOk = await this.databaseReachable();
    return {
      status: !databaseOk ? 'degraded' : this.seal.sealed ? 'sealed' : 'ok',
      database: databaseOk ? 'ok' : 'unreachable',
      sealed: this.seal.sealed,
      masterKeyProtection: this.seal.protection,
      ...(this.sources.masterKey ? { masterKey: this.sources.masterKey() } : {}),
      ...(this.sources.audit ? { audit: this.sources.audit() } : {}),
    };
  }

  private async databaseReachable(): Promise<boolean> {
    const now = Date.now();
    if (this.lastCheck && now - this.lastCheck.at < DATABASE_CHECK_TTL_MS) return this.lastCheck.ok;
    let ok = false;
    try {
      await this.dataSource.query('SELECT 1');
      ok = true;
    } catch {
      ok = false;
    }
    this.lastCheck = { at: now, ok };
    return ok;
  }
}
