// The Kubernetes KMS v2 plugin's Encrypt and Decrypt round trip, for `npm run bench`: the built plugin
// (apps/k8s-kms-plugin) as a child process on a unix socket, a client of the bench's Keyhold over mutual TLS;
// a grpc-js client here drives closed-loop load (each worker sends its next call when the last one answered)
// at the given concurrency levels. Encrypt wraps a fresh 32-byte seed (what kube-apiserver sends); Decrypt
// unwraps one ciphertext made once. Latency = the whole round trip: socket, plugin, mTLS hop, Keyhold.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import grpc from '@grpc/grpc-js';
import { startCpuSampling } from './cpu.mjs';
import protoLoader from '@grpc/proto-loader';

const KEY_NAME = 'bench-k8s';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(repo, socketPath) {
  const definition = protoLoader.loadSync(join(repo, 'apps/k8s-kms-plugin/proto/kms-v2.proto'), { keepCase: true, defaults: true });
  const { v2 } = grpc.loadPackageDefinition(definition);
  const c = new v2.KeyManagementService(`unix:${socketPath}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'localhost' });
  const call = (method, request) =>
    new Promise((resolve, reject) => c[method](request, { deadline: Date.now() + 3000 }, (err, res) => (err ? reject(err) : resolve(res))));
  return { call, close: () => c.close() };
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

async function load(fn, concurrency, durationMs, warmupMs) {
  const latencies = [];
  let errors = 0;
  let errorSample = '';
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await fn();
        const t1 = performance.now();
        if (t0 >= measureFrom) latencies.push(t1 - t0);
      } catch (error) {
        errors += 1;
        errorSample ||= error.message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  latencies.sort((a, b) => a - b);
  return {
    throughput: latencies.length / (durationMs / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    count: latencies.length,
    errors,
    errorSample,
  };
}

/**
 * Runs the plugin against Keyhold at `keyholdOrigin` (certificates in certDir: ca.crt, operator.crt/.key,
 * which the bench's Keyhold grants everything) and measures Encrypt and Decrypt at each concurrency level.
 */
export async function runPluginBench({ repo, keyholdOrigin, keyholdPid, certDir, createKey, levels = [1, 64], durationMs, warmupMs, log }) {
  await createKey(KEY_NAME);
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-bench-kms-'));
  const socketPath = join(dir, 'kms.sock');
  let output = '';
  const child = spawn(process.execPath, [join(repo, 'apps/k8s-kms-plugin/dist/src/main.js'), 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      KEYHOLD_URL: keyholdOrigin,
      KEYHOLD_CA_FILE: join(certDir, 'ca.crt'),
      KEYHOLD_CERT_FILE: join(certDir, 'operator.crt'),
      KEYHOLD_KEY_FILE: join(certDir, 'operator.key'),
      KEYHOLD_KMS_KEY: KEY_NAME,
      KEYHOLD_KMS_LISTEN: `unix://${socketPath}`,
      KEYHOLD_KMS_HEALTH_ADDR: 'off',
      KEYHOLD_KMS_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.on('exit', r));
  const kms = client(repo, socketPath);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`plugin exited: ${output}`);
      if (existsSync(socketPath)) {
        try {
          if ((await kms.call('Status', {})).healthz === 'ok') break;
        } catch {
          // not yet
        }
      }
      if (Date.now() > deadline) throw new Error(`plugin not healthy in 30 s: ${output}`);
      await sleep(100);
    }
    const seed = randomBytes(32);
    const wrapped = await kms.call('Encrypt', { plaintext: seed, uid: 'bench' });
    const back = await kms.call('Decrypt', { ciphertext: wrapped.ciphertext, key_id: wrapped.key_id, annotations: wrapped.annotations, uid: 'bench' });
    if (!Buffer.from(back.plaintext).equals(seed)) throw new Error('plugin Decrypt did not give the seed back');
    const rows = [];
    for (const concurrency of levels) {
      for (const operation of ['Encrypt', 'Decrypt']) {
        log(`plugin ${operation} c=${concurrency}: ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s ...`);
        const fn =
          operation === 'Encrypt'
            ? () => kms.call('Encrypt', { plaintext: randomBytes(32), uid: 'bench' })
            : () => kms.call('Decrypt', { ciphertext: wrapped.ciphertext, key_id: wrapped.key_id, annotations: wrapped.annotations, uid: 'bench' });
        // CPU of each process over the measured window only (after the warm-up), as for the service plane.
        let sampling = null;
        const startTimer = setTimeout(() => (sampling = startCpuSampling({ client: process.pid, plugin: child.pid, keyhold: keyholdPid })), warmupMs);
        const result = await load(fn, concurrency, durationMs, warmupMs);
        clearTimeout(startTimer);
        result.cpu = sampling?.stop() ?? null;
        log(`plugin ${operation} c=${concurrency}: ${result.throughput.toFixed(0)} calls/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms${result.errors ? `, ${result.errors} ERRORS (${result.errorSample})` : ''}`);
        rows.push({ operation, concurrency, ...result });
      }
    }
    return rows;
  } finally {
    kms.close();
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pluginTable(rows) {
  const lines = [
    '| RPC | concurrency | calls/s | p50 ms | p99 ms | errors | CPU per call, µs: client / plugin / Keyhold (+ its PostgreSQL) | other processes (cores) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const perCall = (cores, r) => (r.throughput > 0 ? Math.round((cores * 1e6) / r.throughput) : NaN);
  for (const r of rows) {
    const cpu = r.cpu
      ? `${perCall(r.cpu.client, r)} / ${perCall(r.cpu.plugin, r)} / ${perCall(r.cpu.keyhold, r)} (+${perCall(r.cpu['keyhold children'], r)})`
      : 'n/a';
    const other = r.cpu ? `${r.cpu.other.toFixed(2)}${r.cpu.other > 0.15 ? ' (noisy)' : ''}` : 'n/a';
    lines.push(`| ${r.operation} | ${r.concurrency} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${cpu} | ${other} |`);
  }
  return lines.join('\n');
}
