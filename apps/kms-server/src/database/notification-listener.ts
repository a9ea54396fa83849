import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';

type Handler = (payload: string) => void;

/**
 * One Postgres connection that LISTENs on every channel Keyhold uses to tell its instances about committed
 * changes (keys, grants, revocations). If the connection breaks it reconnects with backoff, and then calls
 * the `onResync` handlers, since notifications sent in the gap are lost. While it is away, caches keep
 * serving what they have (a database outage must not stop encryption), stale for at most their TTL.
 */
export class NotificationListener {
  private readonly logger = new Logger(NotificationListener.name);
  private readonly handlers = new Map<string, Handler[]>();
  private readonly resyncHandlers: Array<() => void> = [];
  private client: Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = 250;

  constructor(private readonly connection: ClientConfig) {}

  subscribe(channel: string, handler: Handler): void {
    if (!/^[a-z_]+$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handler]);
  }

  /** Called after every (re)connection: whatever changed while nobody listened must be re-read. */
  onResync(handler: () => void): void {
    this.resyncHandlers.push(handler);
  }

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
      for (const handler of this.handlers.get(message.channel) ?? []) handler(message.payload ?? '');
    });
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      for (const channel of this.handlers.keys()) await client.query(`LISTEN ${channel}`);
      this.client = client;
      this.retryDelayMs = 250;
      for (const handler of this.resyncHandlers) handler();
    } catch (error) {
      this.logger.warn({ msg: 'notification listener cannot connect; retrying', err: (error as Error).message });
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
