import type { DataSource } from 'typeorm';
import type { MasterKey } from '../seal/master-key';

export interface HealthReport {
  status: 'ok' | 'degraded';
  database: 'ok' | 'unreachable';
  sealed: boolean;
  masterKeyProtection: MasterKey['protection'];
}

const DATABASE_CHECK_TTL_MS = 2000;

/** Health for load balancers and operators; the database probe is cached so polling cannot load Postgres. */
export class HealthService {
  private lastCheck: { at: number; ok: boolean } | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly masterKey: MasterKey,
  ) {}

  async report(): Promise<HealthReport> {
    const databaseOk = await this.databaseReachable();
    return {
      status: databaseOk ? 'ok' : 'degraded',
      database: databaseOk ? 'ok' : 'unreachable',
      sealed: false,
      masterKeyProtection: this.masterKey.protection,
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
