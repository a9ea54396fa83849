import { Client } from 'pg';
import { randomToken } from '@keyhold/crypto-core';

/** The server the test runner started (or DATABASE_URL); each test file gets a database of its own on it. */
export function testServerUrl(): string {
  const url = process.env.KEYHOLD_TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('KEYHOLD_TEST_DATABASE_URL is not set: run the tests with `npm test`');
  return url;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = testServerUrl();
  const name = `keyhold_test_${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const client = new Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
