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
}

const DATABASE_CHECK_TTL_MS = 2000;

/** Health for load balancers and operators; the database probe is cached so polling cannot load Postgres. */
export class HealthService {
  private lastCheck: { at: number; ok: boolean } | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly seal: SealState,
    private readonly masterKey: (() => NonNullable<HealthReport['masterKey']>) | null = null,
  ) {}

  async report(): Promise<HealthReport> {
    const databaseOk = await this.databaseReachable();
    return {
      status: !databaseOk ? 'degraded' : this.seal.sealed ? 'sealed' : 'ok',
      database: databaseOk ? 'ok' : 'unreachable',
      sealed: this.seal.sealed,
      masterKeyProtection: this.seal.protection,
      ...(this.masterKey ? { masterKey: this.masterKey() } : {}),
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
