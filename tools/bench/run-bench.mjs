// `npm run bench`: Keyhold's service plane against a bare Node https server, same load generator,
// same run, same certificates. Prints a Markdown table and writes docs/benchmarks.md.
//
//   node tools/bench/run-bench.mjs [--duration 8] [--warmup 2] [--concurrency 16,64]
//                                  [--no-write] [--cpu-prof DIR] [--bare-only --certs DIR]
//
//   --duration S     measured seconds per run (default 8)
//   --warmup S       discarded warm-up seconds before each run (default 2)
//   --concurrency L  comma-separated concurrency levels (default 16,64)
//   --no-write       print only; leave docs/benchmarks.md alone
//   --cpu-prof DIR   run the Keyhold server child with --cpu-prof, profiles written to DIR
//   --bare-only      measure only the bare server (a check of the harness itself); needs
//   --certs DIR        a folder with ca.crt, server.crt, server.key, operator.crt, operator.key
//
// Keyhold and the bare server each run as a child process; the load generator runs in this one.
// See docs/benchmarks.md for what is measured and how to read it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCpuSampling } from './cpu.mjs';
import { requestOnce, runLoad } from './load.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_MAIN = join(REPO, 'apps/kms-server/dist/src/main.js');
const BARE_MAIN = join(REPO, 'tools/bench/bare-server.mjs');
const DOC = join(REPO, 'docs/benchmarks.md');
const KEY_NAME = 'bench';
const PLAINTEXT_BYTES = 256;
const HEALTH_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const TARGETS = { encryptRatioAt64: 0.6, p99Ms: 10, rssMb: 300 };
// A run during which processes other than the bench's own used more than this many cores is flagged.
const NOISE_LIMIT_CORES = 0.15;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16,64' },
    'no-write': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'bare-only': { type: 'boolean', default: false },
    certs: { type: 'string' },
  },
});
const durationMs = Number(args.duration) * 1000;
const warmupMs = Number(args.warmup) * 1000;
const levels = args.concurrency.split(',').map((x) => Number(x.trim()));
if (!(durationMs > 0) || !(warmupMs >= 0) || levels.some((c) => !Number.isInteger(c) || c < 1)) {
  console.error('bench: bad --duration, --warmup or --concurrency');
  process.exit(2);
}
if (args['bare-only'] && !args.certs) {
  console.error('bench: --bare-only needs --certs DIR');
  process.exit(2);
}

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Child processes

/** Keeps the last `limit` bytes a child wrote, to show when it fails. */
function tail(stream, limit = 64 * 1024) {
  const state = { text: '' };
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    state.text = (state.text + chunk).slice(-limit);
  });
  return state;
}

function startChild(name, file, env, { detached = false, nodeArgs = [] } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, file], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached, // Keyhold: its own process group, so its embedded Postgres can be killed with it if need be
  });
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const exited = new Promise((resolveExit) => child.on('exit', (code, signal) => resolveExit({ code, signal })));
  let exitInfo = null;
  exited.then((info) => (exitInfo = info));
  return {
    name,
    child,
    pid: child.pid,
    exited,
    get exitInfo() {
      return exitInfo;
    },
    output: () => `--- ${name} stdout (tail) ---\n${out.text}\n--- ${name} stderr (tail) ---\n${err.text}`,
    detached,
  };
}

async function stopChild(proc) {
  if (!proc || proc.exitInfo) return;
  try {
    proc.child.kill('SIGTERM');
  } catch {
    return;
  }
  const timedOut = Symbol('timeout');
  const result = await Promise.race([proc.exited, sleep(STOP_GRACE_MS).then(() => timedOut)]);
  if (result === timedOut) {
    log(`${proc.name} did not stop within ${STOP_GRACE_MS / 1000} s of SIGTERM: SIGKILL`);
    try {
      if (proc.detached) process.kill(-proc.pid, 'SIGKILL');
      else proc.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    await proc.exited;
  }
}

/** Memory figures of a live process, in MB (VmHWM = peak resident set size since it started). */
function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return { rssMb: NaN, hwmMb: NaN };
  }
}

/** Polls VmRSS too, in case VmHWM is unavailable; the report uses the larger of the two. */
function watchMemory(pid) {
  let peak = 0;
  const timer = setInterval(() => {
    const { rssMb } = memoryOf(pid);
    if (rssMb > peak) peak = rssMb;
  }, 250);
  timer.unref();
  return {
    finish() {
      clearInterval(timer);
      const { rssMb, hwmMb } = memoryOf(pid);
      return { peakMb: Math.max(peak, rssMb || 0, hwmMb || 0), hwmMb, rssAtEndMb: rssMb };
    },
  };
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Keyhold and bare server set-up

async function startKeyhold(home) {
  const port = await freePort();
  const postgresPort = await freePort();
  const env = {
    KEYHOLD_HOME: home,
    KEYHOLD_SERVICE_PORT: String(port),
    KEYHOLD_EMBEDDED_POSTGRES_PORT: String(postgresPort),
    KEYHOLD_LOG_LEVEL: 'warn',
  };
  const nodeArgs = [];
  if (args['cpu-prof']) {
    // A command-line flag: Node refuses --cpu-prof in NODE_OPTIONS.
    const dir = resolve(args['cpu-prof']);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const proc = startChild('keyhold', SERVER_MAIN, env, { detached: true, nodeArgs });
  cleanup.push(() => stopChild(proc)); // registered at once, so a failed start is stopped too
  const origin = `https://127.0.0.1:${port}`;
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no answer yet';
  const startedAt = Date.now();
  while (Date.now() < deadline) {
    if (proc.exitInfo) {
      throw new Error(`Keyhold exited during start-up (${JSON.stringify(proc.exitInfo)})\n${proc.output()}`);
    }
    try {
      const tls = certsFrom(home); // written by the server on first start
      const res = await requestOnce({ origin, path: '/v1/health', tls, timeoutMs: 2000 });
      if (res.status === 200) return { proc, origin, tls, startMs: Date.now() - startedAt };
      last = `${res.status} ${res.text.slice(0, 200)}`;
    } catch (error) {
      last = error.code ?? error.message;
    }
    await sleep(250);
  }
  throw new Error(
    `Keyhold did not answer 200 on /v1/health within ${HEALTH_TIMEOUT_MS / 1000} s (last: ${last})\n${proc.output()}`,
  );
}

async function startBare(dir) {
  const proc = startChild('bare', BARE_MAIN, {
    BARE_CERT: join(dir, 'server.crt'),
    BARE_KEY: join(dir, 'server.key'),
    BARE_CA: join(dir, 'ca.crt'),
    BARE_PORT: '0',
    BARE_HOST: '127.0.0.1',
  });
  const port = await new Promise((resolvePort, reject) => {
    let buffered = '';
    const onData = (chunk) => {
      buffered += chunk;
      const match = /\{"listening":(\d+)\}/.exec(buffered);
      if (match) {
        proc.child.stdout.off('data', onData);
        resolvePort(Number(match[1]));
      }
    };
    proc.child.stdout.on('data', onData);
    proc.exited.then((info) => reject(new Error(`bare server exited (${JSON.stringify(info)})\n${proc.output()}`)));
    sleep(10_000).then(() => reject(new Error(`bare server did not start\n${proc.output()}`)));
  });
  return { proc, origin: `https://127.0.0.1:${port}` };
}

function certsFrom(dir) {
  return {
    ca: readFileSync(join(dir, 'ca.crt')),
    cert: readFileSync(join(dir, 'operator.crt')),
    key: readFileSync(join(dir, 'operator.key')),
  };
}

async function expectOk(what, promise) {
  const res = await promise;
  if (res.status < 200 || res.status > 299) throw new Error(`${what}: ${res.status} ${res.text.slice(0, 500)}`);
  return res.json;
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = {
  rps: (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–'),
  ms: (x) => (Number.isFinite(x) ? x.toFixed(2) : '–'),
  pct: (x) => (Number.isFinite(x) ? `${Math.round(x * 100)} %` : '–'),
  mb: (x) => (Number.isFinite(x) ? `${x.toFixed(0)} MB` : '–'),
  us: (x) => (Number.isFinite(x) ? x.toFixed(0) : '–'),
};

const cores = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');

function describeCpu(cpu) {
  const parts = [];
  if ('keyhold' in cpu) parts.push(`Keyhold ${cores(cpu.keyhold)} + its PostgreSQL ${cores(cpu['keyhold children'])}`);
  parts.push(`bare ${cores(cpu.bare)}`, `load generator ${cores(cpu['load generator'])}`, `other ${cores(cpu.other)}`);
  return parts.join(', ');
}

/** CPU time the server under test spent per answered request, in microseconds. */
function cpuPerRequest({ server, result }) {
  const used = result.cpu?.[server];
  return Number.isFinite(used) && result.throughput > 0 ? (used * 1e6) / result.throughput : NaN;
}

function cpuTable(runs) {
  const withKeyhold = runs.some((r) => r.result.cpu && 'keyhold' in r.result.cpu);
  const lines = [
    '| run | concurrency | req/s | server CPU per request (µs) | ' +
      (withKeyhold ? "Keyhold server | Keyhold's PostgreSQL | " : '') +
      'bare server | load generator | other processes |',
    `|---|--:|--:|--:|${withKeyhold ? '--:|--:|' : ''}--:|--:|--:|`,
  ];
  for (const run of runs) {
    const { label, concurrency, result } = run;
    const c = result.cpu;
    if (!c) continue;
    const other = result.noisy ? `**${cores(c.other)}** (noisy)` : cores(c.other);
    lines.push(
      `| ${label} | ${concurrency} | ${fmt.rps(result.throughput)} | ${fmt.us(cpuPerRequest(run))} | ` +
        (withKeyhold ? `${cores(c.keyhold)} | ${cores(c['keyhold children'])} | ` : '') +
        `${cores(c.bare)} | ${cores(c['load generator'])} | ${other} |`,
    );
  }
  return lines.join('\n');
}

function table(rows) {
  const lines = [
    '| operation | concurrency | Keyhold req/s | Keyhold p50 ms | Keyhold p99 ms ' +
      '| bare req/s | bare p50 ms | bare p99 ms | Keyhold / bare (req/s) | errors (Keyhold / bare) |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of rows) {
    const k = row.keyhold;
    const b = row.bare;
    const flag = (r) => (r && r.errors > 0 ? `**${r.errors}**` : r ? '0' : '–');
    lines.push(
      `| ${row.operation} | ${row.concurrency} | ${fmt.rps(k?.throughput)} | ${fmt.ms(k?.p50)} | ${fmt.ms(k?.p99)} | ` +
        `${fmt.rps(b.throughput)} | ${fmt.ms(b.p50)} | ${fmt.ms(b.p99)} | ` +
        `${k ? `**${fmt.pct(k.throughput / b.throughput)}**` : '–'} | ${flag(k)} / ${flag(b)} |`,
    );
  }
  return lines.join('\n');
}

function machine() {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return { model, cores: cpus().length, node: process.version, platform: `${process.platform} ${process.arch}` };
}

function verdicts(rows, memory) {
  const out = [];
  const enc64 = rows.find((r) => r.operation === 'encrypt' && r.concurrency === 64 && r.keyhold);
  if (enc64) {
    const ratio = enc64.keyhold.throughput / enc64.bare.throughput;
    const met = (ok) => (ok ? 'met' : 'missed');
    out.push(
      `- Encrypt at concurrency 64: Keyhold does **${fmt.pct(ratio)}** of bare's throughput ` +
        `(target ≥ ${fmt.pct(TARGETS.encryptRatioAt64)}): **${met(ratio >= TARGETS.encryptRatioAt64)}**; ` +
        `p99 ${fmt.ms(enc64.keyhold.p99)} ms (target < ${TARGETS.p99Ms} ms): ` +
        `**${met(enc64.keyhold.p99 < TARGETS.p99Ms)}**.`,
    );
  }
  if (memory) {
    out.push(
      `- Keyhold server process peak RSS: **${fmt.mb(memory.peakMb)}** (target < ${TARGETS.rssMb} MB): ` +
        `**${memory.peakMb < TARGETS.rssMb ? 'met' : 'missed'}**.`,
    );
  }
  const flagged = rows.flatMap((r) => [r.keyhold, r.bare].filter(Boolean)).filter((r) => r.errors > 0);
  if (flagged.length > 0) out.push(`- **${flagged.length} run(s) had errors: their figures are not trustworthy.**`);
  const noisy = [...new Set(rows.flatMap((r) => [r.keyhold, r.bare]))].filter((r) => r?.noisy);
  if (noisy.length > 0) {
    out.push(
      `- **${noisy.length} run(s) shared the machine with other busy processes (more than ${NOISE_LIMIT_CORES} cores ` +
        'used by neither the servers nor the load generator): re-run on a quiet machine before trusting them.**',
    );
  }
  return out.join('\n');
}

function errorDetails(rows) {
  const lines = [];
  const seen = new Set();
  for (const row of rows) {
    for (const [who, r] of [
      ['Keyhold', row.keyhold],
      ['bare', row.bare],
    ]) {
      if (!r || r.errors === 0 || seen.has(r)) continue;
      seen.add(r);
      const samples = r.errorSamples.map((s) => `\`${s.what.replace(/`/g, "'")}\` ×${s.count}`).join('; ');
      lines.push(`- ${who} ${row.operation} c=${row.concurrency}: ${r.errors} errors, e.g. ${samples}`);
    }
  }
  return lines.join('\n');
}

function document({ rows, runs, memory, bareMemory, when, m, startMs, interpretation, totalSeconds }) {
  return `# Benchmarks

_Generated by \`npm run bench\` (tools/bench/run-bench.mjs) on ${when}. Re-run it to refresh this page._

## What is measured

- **Keyhold's service plane** (\`apps/kms-server\`, NestJS + Fastify), over mutual TLS with keep-alive
  connections: \`POST /v1/keys/bench/encrypt\` with \`{"plaintext": <base64 of ${PLAINTEXT_BYTES} random bytes>}\`
  and \`POST /v1/keys/bench/decrypt\` with a ciphertext made once from that plaintext, against one
  \`aes-256-gcm\` key, with the generated operator certificate. The server runs in its own process with
  its embedded PostgreSQL (\`KEYHOLD_LOG_LEVEL=warn\`), started fresh in a temporary KEYHOLD_HOME.
- **A bare Node \`https\` server** (\`tools/bench/bare-server.mjs\`): same certificates, \`requestCert: true\`,
  parses the JSON body, base64-decodes the plaintext and does one AES-256-GCM encryption with a random
  12-byte IV per request, answering \`{ciphertext}\`. No framework, validation, authorization, audit or
  database: the floor of what any Node service doing this work costs on this machine. The same bare
  figures are the baseline for both the encrypt and decrypt rows (for ${PLAINTEXT_BYTES} bytes, AES-GCM
  encryption and decryption cost the same; the HTTP, TLS and JSON work dominates).
- **Load generator** (\`tools/bench/load.mjs\`): one undici \`Pool\` per run with \`connections = concurrency\`,
  \`pipelining: 1\`, keep-alive, client certificate; \`concurrency\` workers issue requests back to back
  (closed loop). Each run is ${warmupMs / 1000} s of warm-up (discarded) and ${durationMs / 1000} s measured. Latency is
  from just before the request to the last byte of the answer (\`process.hrtime.bigint()\`); p50/p99 are
  nearest-rank over every measured request. Throughput counts 2xx answers only; any other answer or
  failed request is an error and flags the run.
- **The ratio Keyhold / bare is the figure that counts.** The load generator runs in the bench process
  on the same ${m.cores} cores as the server under test, so absolute numbers say as much about the machine
  and the client as about the server, and drift between machines; both servers are measured by the same
  client in the same run, so the ratio carries over.
- **CPU use** of each process during each measured window, from \`/proc\` (in cores: 1.00 is one core
  busy all the time): the server under test, Keyhold's embedded PostgreSQL, the load generator, and all
  other processes; and the server's CPU time per answered request (its cores ÷ its req/s), which does not
  depend on how much CPU the load generator left it. A run during which other processes used more than
  ${NOISE_LIMIT_CORES} cores is flagged as noisy.
- **Memory**: peak resident set size (\`VmHWM\` in \`/proc/<pid>/status\`, read just before stopping it) of
  the Keyhold server's Node process over the whole run, start-up included. The embedded PostgreSQL runs
  in separate processes and is not included.

Targets (docs/design quality.md): encrypt at concurrency 64 at least ${fmt.pct(TARGETS.encryptRatioAt64)} of bare's
throughput with p99 under ${TARGETS.p99Ms} ms; Keyhold's server process under ${TARGETS.rssMb} MB resident.

## How to run

\`\`\`sh
npm run bench    # builds, then runs tools/bench/run-bench.mjs (about ${Math.max(1, Math.round(totalSeconds / 60))} min)
node tools/bench/run-bench.mjs --duration 8 --warmup 2 --concurrency 16,64 [--no-write] [--cpu-prof DIR]
\`\`\`

\`--cpu-prof DIR\` starts the Keyhold server child with \`node --cpu-prof\` and leaves its \`.cpuprofile\` in DIR
(open it in Chrome DevTools). Nothing else needs to be running: the bench picks free ports, makes its own
KEYHOLD_HOME in the temp folder and removes it at the end.

## Results

${table(rows)}

Latencies in milliseconds. Keyhold's server process peak RSS: **${fmt.mb(memory?.peakMb)}**
(bare server: ${fmt.mb(bareMemory?.peakMb)}). Keyhold start-up to first healthy answer, including
creating its development environment and initialising PostgreSQL: ${(startMs / 1000).toFixed(1)} s.

${verdicts(rows, memory)}
${errorDetails(rows) ? `\nErrors:\n\n${errorDetails(rows)}\n` : ''}
CPU use during each measured window, in cores (of ${m.cores}):

${cpuTable(runs)}

Machine: ${m.model}, ${m.cores} cores, ${m.platform}; Node ${m.node}; ${when}.

## Interpretation

${interpretation}

## Kubernetes plugin Encrypt/Decrypt round trip

Not built yet: the Kubernetes KMS v2 plugin does not exist in the repository so far. When it does, this
section will time its Encrypt and Decrypt gRPC round trip (plugin over its Unix socket, through to Keyhold
over mutual TLS) with the same method.
`;
}

function interpret(rows, memory) {
  const parts = [];
  const ratios = rows.filter((r) => r.keyhold).map((r) => ({ r, ratio: r.keyhold.throughput / r.bare.throughput }));
  if (ratios.length === 0) return 'Only the bare server was measured (harness check): no Keyhold figures.';
  const lo = Math.min(...ratios.map((x) => x.ratio));
  const hi = Math.max(...ratios.map((x) => x.ratio));
  parts.push(
    `Keyhold delivers ${fmt.pct(lo)}–${fmt.pct(hi)} of the bare server's throughput across the rows. The gap is ` +
      `what the framework (NestJS + Fastify routing, guards, the zod validation pipe, exception filters), the ` +
      `identity and grant check, the key-ring lookup (cached: no database round trip per request once warm) and the ` +
      `ciphertext envelope cost per request on top of TLS, HTTP parsing, JSON and AES itself, which both servers pay.`,
  );
  const byOp = (op, c) => rows.find((r) => r.operation === op && r.concurrency === c)?.keyhold;
  const [c1, c2] = levels;
  if (c2 && byOp('encrypt', c1) && byOp('encrypt', c2)) {
    const a = byOp('encrypt', c1);
    const b = byOp('encrypt', c2);
    parts.push(
      `Going from concurrency ${c1} to ${c2}, Keyhold's encrypt throughput moves from ${fmt.rps(a.throughput)} to ` +
        `${fmt.rps(b.throughput)} req/s while p50 goes from ${fmt.ms(a.p50)} to ${fmt.ms(b.p50)} ms: with ` +
        `${machine().cores} cores shared by server and client, the server is CPU-bound well before ` +
        `${c2} connections, ` +
        `so extra concurrency mostly queues (mean latency ≈ concurrency / throughput).`,
    );
  }
  if (memory) {
    parts.push(
      `The peak RSS of ${fmt.mb(memory.peakMb)} covers Nest's module graph, TypeORM and the pg driver, pino, ` +
        "and V8's heap under load; the embedded PostgreSQL is extra.",
    );
  }
  return parts.join('\n\n');
}

// ---------------------------------------------------------------------------------------------
// Main

const cleanup = [];
let cleaningUp = false;
async function runCleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  for (const fn of cleanup.reverse()) {
    try {
      await fn();
    } catch (error) {
      log(`clean-up: ${error.message}`);
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping children`);
    runCleanup().finally(() => process.exit(130));
  });
}

async function main() {
  const benchStart = Date.now();
  const m = machine();
  const payload = JSON.stringify({ plaintext: randomBytes(PLAINTEXT_BYTES).toString('base64') });
  let certDir;
  let keyhold = null;

  if (args['bare-only']) {
    certDir = resolve(args.certs);
  } else {
    const home = mkdtempSync(join(tmpdir(), 'keyhold-bench-'));
    // Under root, embedded-postgres runs PostgreSQL as a separate `postgres` user, which must be able to
    // traverse KEYHOLD_HOME to reach its data folder (mkdtemp makes it 0700). Traverse only, no listing.
    if (process.getuid?.() === 0) chmodSync(home, 0o711);
    cleanup.push(() => rmSync(home, { recursive: true, force: true }));
    certDir = home;
    log(`starting Keyhold (KEYHOLD_HOME=${home}) ...`);
    keyhold = await startKeyhold(home);
    log(`Keyhold healthy after ${(keyhold.startMs / 1000).toFixed(1)} s`);
  }

  const tls = certsFrom(certDir);
  const bare = await startBare(certDir);
  cleanup.push(() => stopChild(bare.proc));
  const bareMemory = watchMemory(bare.proc.pid);

  const post = (origin, path, body) => requestOnce({ origin, path, method: 'POST', body, tls });
  const sanityBare = await expectOk('bare encrypt', post(bare.origin, '/encrypt', payload));
  if (typeof sanityBare?.ciphertext !== 'string') throw new Error('bare server answered without a ciphertext');

  const encryptPath = `/v1/keys/${KEY_NAME}/encrypt`;
  const decryptPath = `/v1/keys/${KEY_NAME}/decrypt`;
  let ciphertextBody;
  let keyholdMemory;
  if (keyhold) {
    keyholdMemory = watchMemory(keyhold.proc.pid);
    await expectOk('create key', post(keyhold.origin, '/v1/keys', { name: KEY_NAME, algorithm: 'aes-256-gcm' }));
    const enc = await expectOk('encrypt', post(keyhold.origin, encryptPath, payload));
    if (typeof enc?.ciphertext !== 'string') {
      throw new Error(`encrypt answered without a ciphertext: ${JSON.stringify(enc)}`);
    }
    ciphertextBody = JSON.stringify({ ciphertext: enc.ciphertext });
    const dec = await expectOk('decrypt', post(keyhold.origin, decryptPath, ciphertextBody));
    if (dec?.plaintext !== JSON.parse(payload).plaintext) throw new Error('decrypt did not give back the plaintext');
  }

  const roots = { 'load generator': process.pid, keyhold: keyhold?.proc.pid, bare: bare.proc.pid };
  const runs = [];
  const run = async (label, origin, path, body, concurrency) => {
    const server = label.startsWith('bare') ? 'bare' : 'keyhold';
    log(`${label} c=${concurrency}: ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s ...`);
    // CPU use over the measured window only (timers on this event loop: late by at most a few ms).
    let sampling = null;
    let cpu = null;
    const startTimer = setTimeout(() => (sampling = startCpuSampling(roots)), warmupMs);
    const stopTimer = setTimeout(() => (cpu = sampling?.stop() ?? null), warmupMs + durationMs);
    const result = await runLoad({ origin, path, method: 'POST', body, concurrency, durationMs, warmupMs, tls });
    clearTimeout(startTimer);
    clearTimeout(stopTimer);
    result.cpu = cpu ?? sampling?.stop() ?? null;
    result.noisy = result.cpu ? result.cpu.other > NOISE_LIMIT_CORES : false;
    runs.push({ label, server, concurrency, result });
    const errors = result.errors ? `, ${result.errors} ERRORS (${result.errorSamples[0]?.what})` : '';
    log(
      `${label} c=${concurrency}: ${fmt.rps(result.throughput)} req/s, ` +
        `p50 ${fmt.ms(result.p50)} ms, p99 ${fmt.ms(result.p99)} ms${errors}` +
        (result.cpu ? `; CPU (cores): ${describeCpu(result.cpu)}` : '') +
        (result.cpu ? `; ${fmt.us(cpuPerRequest({ server, result }))} µs server CPU per request` : '') +
        (result.noisy ? ' [NOISY: other processes were busy]' : ''),
    );
    return result;
  };

  // Interleaved per concurrency level (bare, then Keyhold), so slow drift in the machine hits both alike.
  const rows = [];
  for (const concurrency of levels) {
    const bareResult = await run('bare encrypt', bare.origin, '/encrypt', payload, concurrency);
    if (!keyhold) {
      rows.push({ operation: 'encrypt', concurrency, bare: bareResult, keyhold: null });
      continue;
    }
    const encrypt = await run('Keyhold encrypt', keyhold.origin, encryptPath, payload, concurrency);
    rows.push({ operation: 'encrypt', concurrency, bare: bareResult, keyhold: encrypt });
    const decrypt = await run('Keyhold decrypt', keyhold.origin, decryptPath, ciphertextBody, concurrency);
    rows.push({ operation: 'decrypt', concurrency, bare: bareResult, keyhold: decrypt });
  }

  const memory = keyholdMemory?.finish();
  const bareMem = bareMemory.finish();
  await runCleanup();

  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const totalSeconds = (Date.now() - benchStart) / 1000;
  const interpretation = interpret(rows, memory);
  const out = [
    table(rows),
    keyhold
      ? `Keyhold server process peak RSS: ${fmt.mb(memory.peakMb)} (bare server: ${fmt.mb(bareMem.peakMb)})`
      : `bare server peak RSS: ${fmt.mb(bareMem.peakMb)}`,
    `CPU use during each measured window, in cores (of ${m.cores}):\n\n${cpuTable(runs)}`,
    verdicts(rows, memory),
    errorDetails(rows) && `Errors:\n${errorDetails(rows)}`,
    `Machine: ${m.model}, ${m.cores} cores; Node ${m.node}; ${when}; bench took ${totalSeconds.toFixed(0)} s.`,
  ].filter(Boolean);
  process.stdout.write(`\n${out.join('\n\n')}\n`);

  if (!args['no-write'] && keyhold) {
    const startMs = keyhold.startMs;
    const report = { rows, runs, memory, bareMemory: bareMem, when, m, startMs, interpretation, totalSeconds };
    writeFileSync(DOC, document(report));
    log(`wrote ${DOC}`);
  } else if (!keyhold) {
    log('bare-only run: docs/benchmarks.md left alone');
  }
  const failed = rows.some((r) => r.bare.errors > 0 || (r.keyhold && r.keyhold.errors > 0));
  return failed ? 1 : 0;
}

main()
  .then((code) => process.exit(code))
  .catch(async (error) => {
    log(`failed: ${error.stack ?? error.message}`);
    await runCleanup();
    process.exit(1);
  });
