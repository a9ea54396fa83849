import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where `npm run build` puts the admin console (apps/admin-console/dist), seen from this compiled file. */
export const DEFAULT_ADMIN_CONSOLE_DIR = resolve(__dirname, '../../../../admin-console/dist');

/**
 * The console's pages run only their own bundled script and styles, talk only to this origin, and are never framed.
 * (React sets inline styles through the CSSOM, which style-src does not govern.)
 */
export const ADMIN_CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

const NOT_BUILT_PAGE =
  '<!doctype html><meta charset="utf-8"><title>Keyhold</title><p>The Keyhold admin console is not built: run <code>npm run build</code>. The admin API is at /api/v1 and documented at /docs.</p>\n';

/**
 * Serves the admin console's static files at `/` on the admin listener, with the SPA fallback: any other GET that is
 * not under /api/ or /docs answers index.html, so a reload on /keys/payments works. The API's own 404 handling is
 * untouched (those paths go to the not-found handler). Without a built console, a one-line page says so.
 */
export function registerAdminConsole(fastify: FastifyInstance, distDir: string = DEFAULT_ADMIN_CONSOLE_DIR): void {
  const root = resolve(distDir);
  const indexPath = join(root, 'index.html');

  const send = (reply: FastifyReply, status: number, type: string, body: Buffer | string) =>
    reply
      .code(status)
      .header('content-type', type)
      .header('content-security-policy', ADMIN_CONSOLE_CSP)
      .header('cross-origin-opener-policy', 'same-origin')
      .header('permissions-policy', 'camera=(), microphone=(), geolocation=()')
      .send(body);

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = decodeURIComponentSafe((request.url.split('?')[0] ?? '/').split('#')[0]);
    if (path === null || path.startsWith('/api/') || path === '/api' || path === '/docs' || path.startsWith('/docs/')) {
      return reply.callNotFound();
    }
    if (!existsSync(indexPath)) return send(reply, 200, 'text/html; charset=utf-8', NOT_BUILT_PAGE);
    const file = resolve(root, `.${path}`);
    if (path !== '/' && (file.startsWith(root + sep) && isFile(file))) {
      return send(reply, 200, CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', readFileSync(file));
    }
    // A missing asset is a 404, not the app: a stale page asking for an old bundle should fail plainly.
    if (path.startsWith('/assets/')) return reply.callNotFound();
    return send(reply, 200, 'text/html; charset=utf-8', readFileSync(indexPath));
  };

  fastify.get('/', handler);
  fastify.get('/*', handler);
}

function decodeURIComponentSafe(value: string): string | null {
  try {
    const decoded = decodeURIComponent(value);
    return decoded.includes('\0') ? null : decoded;
  } catch {
    return null;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
