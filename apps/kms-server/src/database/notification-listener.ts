import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';

type Handler = (payload: string) => void;

/** How often the listener's connection is asked a `SELECT 1`, to find out whether it is still alive. */
export const LISTENER_HEARTBEAT_INTERVAL_MS = 15_000;
/** How long the heartbeat (and the connection, with its LISTENs) may take before the connection is given up. */
export const LISTENER_HEARTBEAT_TIMEOUT_MS = 5_000;
/** TCP keepalive on the connection: the first probe after this much silence (the heartbeat is the bound). */
export const LISTENER_KEEPALIVE_INITIAL_DELAY_MS = 10_000;
/** The listener's `application_name` in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'keyhold-listener';

export interface NotificationListenerOptions {
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
}

/**
 * One Postgres connection that LISTENs on every channel Keyhold uses to tell its instances about committed
 * changes (keys, grants, revocations, seal). If the connection breaks it reconnects with backoff, and then
 * calls the `onResync` handlers, since notifications sent in the gap are lost. While it is away, caches keep
 * serving what they have (a database outage must not stop encryption), stale for at most their TTL.
 *
 * A connection a NAT, firewall, load balancer or failover dropped half-open breaks with no error and no end:
 * the socket just goes silent. So the connection has TCP keepalive, and a heartbeat: a `SELECT 1` every
 * `heartbeatIntervalMs`; with no answer within `heartbeatTimeoutMs`, the socket is destroyed and the listener
 * reconnects (and resyncs) as after any other break.
 */
export class NotificationListener {
  private readonly logger = new Logger(NotificationListener.name);
  private readonly handlers = new Map<string, Handler[]>();
  private readonly resyncHandlers: Array<() => void> = [];
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatTimeoutMs: number;
  private client: Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = 250;

  constructor(
    private readonly connection: ClientConfig,
    options: NotificationListenerOptions = {},
  ) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? LISTENER_HEARTBEAT_INTERVAL_MS;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? LISTENER_HEARTBEAT_TIMEOUT_MS;
  }

  subscribe(channel: string, handler: Handler): void {
    if (!/^[a-z_]+$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handler]);
  }

  /** Called after every (re)connection: whatever changed while nobody listened must be re-read. */
  onResync(handler: () => void): void {
    this.resyncHandlers.push(handler);
  }

  /** The Postgres backend pid of the current connection (null while disconnected): for operators and tests. */
  backendPid(): number | null {
    return (this.client as (Client & { processID?: number }) | null)?.processID ?? null;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stopHeartbeat();
    const client = this.client;
    this.client = null;
    if (client) await withTimeout(client.end(), this.heartbeatTimeoutMs).catch(() => destroy(client));
  }

  private async connect(): Promise<void> {
    const client = new Client({
      application_name: LISTENER_APPLICATION_NAME,
      ...this.connection,
      keepAlive: true,
      keepAliveInitialDelayMillis: LISTENER_KEEPALIVE_INITIAL_DELAY_MS,
    });
    client.on('notification', (message) => {
      for (const handler of this.handlers.get(message.channel) ?? []) handler(message.payload ?? '');
    });
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    try {
      // A server that accepts the connection and then goes silent must not hold the listener forever either.
      await withTimeout(
        (async () => {
          await client.connect();
          for (const channel of this.handlers.keys()) await client.query(`LISTEN ${channel}`);
        })(),
        this.heartbeatTimeoutMs * 2,
      );
      if (this.stopped) {
        destroy(client);
        return;
      }
      this.client = client;
      this.retryDelayMs = 250;
      this.startHeartbeat(client);
      for (const handler of this.resyncHandlers) handler();
    } catch (error) {
      this.logger.warn({ msg: 'notification listener cannot connect; retrying', err: (error as Error).message });
      destroy(client);
      this.reconnectLater(client);
    }
  }

  private startHeartbeat(client: Client): void {
    this.stopHeartbeat();
    let beating = false;
    this.heartbeatTimer = setInterval(() => {
      if (beating || this.client !== client) return;
      beating = true;
      withTimeout(client.query('SELECT 1'), this.heartbeatTimeoutMs)
        .catch((error: Error) => {
          if (this.stopped || this.client !== client) return;
          this.logger.warn({ msg: 'notification connection failed its heartbeat; reconnecting and resyncing', err: error.message });
          // A half-open socket never ends by itself: destroy it, so that its 'end' reconnects (and resyncs).
          this.reconnectLater(client);
          destroy(client);
        })
        .finally(() => {
          beating = false;
        });
    }, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private reconnectLater(client: Client): void {
    if (this.stopped || (this.client !== null && this.client !== client)) return;
    this.client = null;
    this.stopHeartbeat();
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 10_000);
  }
}

/** Rejects after `ms`; the promise itself is left to settle on its own (its rejection is swallowed). */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Closes the socket at once, without the goodbye a dead peer would never acknowledge. */
function destroy(client: Client): void {
  client.connection.stream.destroy();
}
