import { chmodSync, chownSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';

export class SocketInUseError extends Error {}

/** Resolves true when something accepts connections on the unix socket at `path`. */
function somebodyListens(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // accepted but silent: a live (if busy) process
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Makes `path` ready to listen on: creates the parent folder (0750) and removes a stale socket file left by
 * a process that died without cleaning up (grpc-js would fail with EADDRINUSE). It refuses to remove a socket
 * that another live process is serving, and anything that is not a socket.
 */
export async function prepareSocketPath(path: string): Promise<{ removedStale: boolean }> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { removedStale: false };
    throw error;
  }
  if (!stat.isSocket()) throw new SocketInUseError(`${path} exists and is not a socket; refusing to remove it`);
  if (await somebodyListens(path)) {
    throw new SocketInUseError(`another process is serving on ${path}; refusing to take its socket over`);
  }
  unlinkSync(path);
  return { removedStale: true };
}

/** After listening: the configured mode (and group) on the socket file. */
export function restrictSocket(path: string, mode: number, group: number | undefined): void {
  if (group !== undefined) chownSync(path, -1, group);
  chmodSync(path, mode);
}

/** Removes our socket file on the way out, if it is still a socket. */
export function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone
  }
}
