import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';
import { KEY_CHANGED_CHANNEL } from '../persistence/typeorm-key.repository';
import type { KeyringCache } from './keyring-cache';

/**
 * Listens for key changes committed by any instance (Postgres LISTEN/NOTIFY) and drops them from this
 * instance's cache. If the channel breaks, the listener reconnects with backoff and clears the whole cache
 * once it is back, since notifications may have been missed. While it is away the cache keeps serving warm
 * keys (a database outage must not stop encryption), stale for at most the cache TTL.
 */
export class KeyChangeListener {
  private readonly logger = new Logger(KeyChangeListener.name);
  private client: Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = 250;

  constructor(
    private readonly connection: ClientConfig,
    private readonly cache: KeyringCache,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new Client(this.connection);
    client.on('notification', (message) => {
      if (message.channel === KEY_CHANGED_CHANNEL && message.payload) this.cache.invalidate(message.payload);
    });
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${KEY_CHANGED_CHANNEL}`);
      this.client = client;
      this.retryDelayMs = 250;
      // Whatever changed while we were not listening is unknown: start from a clean cache.
      this.cache.clear();
    } catch (error) {
      this.logger.warn({ msg: 'key change listener cannot connect; retrying', err: (error as Error).message });
      await client.end().catch(() => undefined);
      this.reconnectLater(client);
    }
  }

  private reconnectLater(client: Client): void {
    if (this.stopped || (this.client !== null && this.client !== client)) return;
    this.client = null;
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 10_000);
  }
}
