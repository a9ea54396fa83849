# Keyhold server image. Build: `docker compose build` (or `docker build -t keyhold .`).
# Runs `node --max-old-space-size=512 apps/kms-server/dist/src/main.js` as the unprivileged `node` user. With NODE_ENV=production
# the server demands DATABASE_URL, TLS files, a sealed master key and a grants file; see README, Production.

# --- build: install everything, compile, then drop the dev dependencies -------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV CI=true NX_DAEMON=false NX_NO_CLOUD=true npm_config_update_notifier=false

# The whole source (see .dockerignore): npm workspaces need every project's package.json to link them.
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && find . -name '*.tsbuildinfo' -not -path './node_modules/*' -delete

# --- runtime --------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Root owns the application files; the server only reads them.
COPY --from=build /app /app
# The audit archive folder (KEYHOLD_AUDIT_ARCHIVE_DIR in docker-compose.yml), owner-only for the server's user: a
# named volume mounted there starts with this owner and mode.
RUN install -d -o node -g node -m 0700 /var/lib/keyhold/audit-archive
USER node
EXPOSE 8443
# Liveness only: the port accepts connections. (Its HTTP health route needs an mTLS client certificate.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('node:net').connect(Number(process.env.KEYHOLD_SERVICE_PORT || 8443), '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"]
# A heap ceiling, as `npm start` sets it: Keyhold's live heap is about 50 MB, and without a ceiling V8 sizes the heap by
# the host's memory and lets garbage pile up to several times that before collecting (docs/benchmarks.md).
CMD ["node", "--max-old-space-size=512", "apps/kms-server/dist/src/main.js"]
