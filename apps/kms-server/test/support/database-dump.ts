import type { DataSource } from 'typeorm';

/**
 * Every row of every table in the database, as text (bytea as hex). Stands in for `pg_dump --data-only`: the
 * machine's pg_dump is older than the embedded server and refuses to dump it.
 */
export async function dumpDatabase(dataSource: DataSource): Promise<string> {
  const tables: Array<{ schemaname: string; tablename: string }> = await dataSource.query(
    `SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
  );
  const parts: string[] = [];
  for (const { schemaname, tablename } of tables) {
    const rows: Array<{ row: string }> = await dataSource.query(
      `SELECT row_to_json(t)::text AS row FROM "${schemaname}"."${tablename}" t`,
    );
    parts.push(`-- ${schemaname}.${tablename}`, ...rows.map((r) => r.row));
  }
  return parts.join('\n');
}

/** The ways a secret could sit in text: raw, hex (bytea, logs), base64 and base64url. */
export function encodingsOf(secret: Buffer): string[] {
  const forms = [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url')];
  const utf8 = secret.toString('utf8');
  if (/^[\x20-\x7e]{6,}$/.test(utf8)) forms.push(utf8);
  return forms;
}
