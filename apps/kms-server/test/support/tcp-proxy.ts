import { type Socket, connect, createServer } from 'node:net';

export interface PostgresProxy {
  /** `databaseUrl`, through the proxy. */
  url: string;
  /**
   * Black-holes every open connection whose startup message contains `marker` (an application_name): both of
   * its sockets stay open, but nothing passes either way any more, as on a connection a NAT or firewall dropped
   * half-open. Neither end gets an error or an end. Returns how many connections it froze.
   */
  freeze(marker: string): number;
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  upstream: Socket;
  startup: Buffer;
  frozen: boolean;
}

/** A TCP proxy in front of the test Postgres, to cut connections the way a network does, not the way Postgres does. */
export async function startPostgresProxy(databaseUrl: string): Promise<PostgresProxy> {
  const target = new URL(databaseUrl);
  const links = new Set<Link>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    const link: Link = { client, upstream, startup: Buffer.alloc(0), frozen: false };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (link.startup.length < 4096) link.startup = Buffer.concat([link.startup, chunk]);
      if (!link.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!link.frozen) client.write(chunk);
    });
    const close = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('close', close);
      socket.on('error', close);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the proxy has no address');
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    freeze(marker) {
      let frozen = 0;
      for (const link of links) {
        if (link.frozen || !link.startup.includes(marker)) continue;
        link.frozen = true;
        frozen += 1;
      }
      return frozen;
    },
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
