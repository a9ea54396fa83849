import { DataSource } from 'typeorm';
import { KEYHOLD_MIGRATIONS } from '@keyhold/migrations';
import { KeyEntity } from '../persistence/key.entity';
import { KeyVersionEntity } from '../persistence/key-version.entity';

export const ENTITIES = [KeyEntity, KeyVersionEntity];

/** The one place a DataSource is made: schema changes only ever come from migrations/. */
export function createDataSource(databaseUrl: string, options: { poolSize?: number } = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    entities: ENTITIES,
    migrations: KEYHOLD_MIGRATIONS,
    migrationsTableName: 'keyhold_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    extra: {
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      // TCP keepalive: a pooled connection a NAT or firewall dropped half-open is found out, not reused forever.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'keyhold',
    },
  });
}

export async function openDatabase(databaseUrl: string): Promise<DataSource> {
  const dataSource = createDataSource(databaseUrl);
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  return dataSource;
}
