// The Kubernetes KMS v2 plugin's Encrypt and Decrypt round trip, for `npm run bench`: the built plugin
// (apps/k8s-kms-plugin) as a child process on a unix socket, a client of the bench's Keyhold over mutual TLS.
// Two clients drive closed-loop load (each worker sends its next call when the last one answered) at the
// given concurrency levels: a grpc-js client in this process, and Debian's python3-grpcio (gRPC C-core) in a
// child process when it is installed. Encrypt wraps a fresh 32-byte seed (what kube-apiserver sends); Decrypt
// unwraps one ciphertext made once. Latency = the whole round trip: socket, plugin, mTLS hop, Keyhold.
// Each client is also measured against the floor (grpc-floor-server.mjs: a grpc-js server that answers at
// once), the gRPC cost alone on this machine, which no plugin can beat.
import { spawn, spawnSync } from 'node:child_process';
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

/** Debian's python3-grpcio with grpc_tools, if installed: stubs generated into stubDir, else null. */
function pythonClient(repo, stubDir) {
  const python = '/usr/bin/python3';
  const protoDir = join(repo, 'apps/k8s-kms-plugin/proto');
  const generated = spawnSync(python, ['-m', 'grpc_tools.protoc', `-I${protoDir}`, `--python_out=${stubDir}`, `--grpc_python_out=${stubDir}`, join(protoDir, 'kms-v2.proto')], {
    encoding: 'utf8',
  });
  if (generated.status !== 0) return null;
  const script = join(repo, 'tools/bench/kms_load.py');
  return async (socketPath, operation, concurrency, durationMs, warmupMs, decryptRequest) => {
    const args = [script, socketPath, protoDir, stubDir, operation, String(concurrency), String(durationMs / 1000), String(warmupMs / 1000)];
    if (operation === 'Decrypt') args.push(JSON.stringify(decryptRequest));
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`python load client failed (${code}): ${err.slice(-500)}`);
    return JSON.parse(out);
  };
}

async function startChild(command, args, env, ready, what) {
  let output = '';
  const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.on('exit', r));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited: ${output}`);
    if (await ready(output).catch(() => false)) break;
    if (Date.now() > deadline) throw new Error(`${what} not ready in 30 s: ${output}`);
    await sleep(100);
  }
  return {
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Runs the plugin against Keyhold at `keyholdOrigin` (certificates in certDir: ca.crt, operator.crt/.key,
 * which the bench's Keyhold grants everything) and measures Encrypt and Decrypt at each concurrency level,
 * with each client, through the plugin and against the floor.
 */
export async function runPluginBench({ repo, keyholdOrigin, keyholdPid, certDir, createKey, levels = [1, 64], durationMs, warmupMs, log }) {
  await createKey(KEY_NAME);
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-bench-kms-'));
  const socketPath = join(dir, 'kms.sock');
  const floorSocket = join(dir, 'floor.sock');
  const stopping = [];
  try {
    const kms = client(repo, socketPath);
    stopping.push(async () => kms.close());
    const plugin = await startChild(
      process.execPath,
      [join(repo, 'apps/k8s-kms-plugin/dist/src/main.js'), 'serve'],
      {
        KEYHOLD_URL: keyholdOrigin,
        KEYHOLD_CA_FILE: join(certDir, 'ca.crt'),
        KEYHOLD_CERT_FILE: join(certDir, 'operator.crt'),
        KEYHOLD_KEY_FILE: join(certDir, 'operator.key'),
        KEYHOLD_KMS_KEY: KEY_NAME,
        KEYHOLD_KMS_LISTEN: `unix://${socketPath}`,
        KEYHOLD_KMS_HEALTH_ADDR: 'off',
        KEYHOLD_KMS_LOG_LEVEL: 'warn',
      },
      async () => existsSync(socketPath) && (await kms.call('Status', {})).healthz === 'ok',
      'plugin',
    );
    stopping.push(() => plugin.stop());
    const floorClient = client(repo, floorSocket);
    stopping.push(async () => floorClient.close());
    const floor = await startChild(process.execPath, [join(repo, 'tools/bench/grpc-floor-server.mjs'), floorSocket], {}, async (out) => out.includes('ready'), 'floor server');
    stopping.push(() => floor.stop());

    const seed = randomBytes(32);
    const wrapped = await kms.call('Encrypt', { plaintext: seed, uid: 'bench' });
    const decryptRequest = { ciphertext: wrapped.ciphertext, key_id: wrapped.key_id, annotations: wrapped.annotations, uid: 'bench' };
    const back = await kms.call('Decrypt', decryptRequest);
    if (!Buffer.from(back.plaintext).equals(seed)) throw new Error('plugin Decrypt did not give the seed back');
    const pythonRequest = {
      ciphertext: Buffer.from(wrapped.ciphertext).toString('base64'),
      key_id: wrapped.key_id,
      annotations: Object.fromEntries(Object.entries(wrapped.annotations).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    };

    const python = pythonClient(repo, dir);
    if (!python) log('python3-grpcio with grpc_tools not found: the plugin is measured with the grpc-js client only');
    const clients = [
      {
        name: 'grpc-js',
        run: (target, operation, concurrency) => {
          const c = target === socketPath ? kms : floorClient;
          const fn = operation === 'Encrypt' ? () => c.call('Encrypt', { plaintext: randomBytes(32), uid: 'bench' }) : () => c.call('Decrypt', decryptRequest);
          return load(fn, concurrency, durationMs, warmupMs);
        },
      },
      ...(python ? [{ name: 'python3-grpcio', run: (target, operation, concurrency) => python(target, operation, concurrency, durationMs, warmupMs, pythonRequest) }] : []),
    ];

    const measure = async (clientKind, target, operation, concurrency) => {
      // CPU of each process over the measured window only (after the warm-up), as for the service plane.
      let sampling = null;
      const startTimer = setTimeout(() => (sampling = startCpuSampling({ client: process.pid, plugin: plugin.pid, keyhold: keyholdPid, floor: floor.pid })), warmupMs);
      const result = await clientKind.run(target, operation, concurrency);
      clearTimeout(startTimer);
      result.cpu = sampling?.stop() ?? null;
      // A client in a child process has exited by now: it reports its own CPU time over the window.
      // Its ticks left /proc with it, so the machine-wide busy time counted them as "other": move them back.
      if (result.cpu && typeof result.clientCores === 'number') {
        result.cpu['client children'] = result.clientCores;
        result.cpu.other = Math.max(0, result.cpu.other - result.clientCores);
      }
      return result;
    };

    const rows = [];
    for (const concurrency of levels) {
      for (const operation of ['Encrypt', 'Decrypt']) {
        for (const clientKind of clients) {
          log(`plugin ${operation} c=${concurrency} (${clientKind.name} client): ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s, then the same against the floor ...`);
          const viaPlugin = await measure(clientKind, socketPath, operation, concurrency);
          const atFloor = await measure(clientKind, floorSocket, operation, concurrency);
          log(
            `plugin ${operation} c=${concurrency} (${clientKind.name}): ${viaPlugin.throughput.toFixed(0)} calls/s, p50 ${viaPlugin.p50.toFixed(2)} ms, ` +
              `p99 ${viaPlugin.p99.toFixed(2)} ms${viaPlugin.errors ? `, ${viaPlugin.errors} ERRORS (${viaPlugin.errorSample})` : ''}; ` +
              `floor ${atFloor.throughput.toFixed(0)} calls/s, p99 ${atFloor.p99.toFixed(2)} ms`,
          );
          rows.push({ client: clientKind.name, operation, concurrency, plugin: viaPlugin, floor: atFloor });
        }
      }
    }
    return rows;
  } finally {
    for (const stop of stopping.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pluginTable(rows) {
  const lines = [
    '| client | RPC | concurrency | calls/s | p50 ms | p99 ms | floor calls/s | floor p50 ms | floor p99 ms | errors | CPU per call, µs: client / plugin / Keyhold (+ its PostgreSQL) | other processes (cores) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const perCall = (cores, r) => (r.throughput > 0 ? Math.round((cores * 1e6) / r.throughput) : NaN);
  for (const { client: name, operation, concurrency, plugin: r, floor: f } of rows) {
    const clientCores = r.cpu ? r.cpu.client + r.cpu['client children'] : 0;
    const cpu = r.cpu
      ? `${perCall(clientCores, r)} / ${perCall(r.cpu.plugin, r)} / ${perCall(r.cpu.keyhold, r)} (+${perCall(r.cpu['keyhold children'], r)})`
      : 'n/a';
    const other = r.cpu ? `${r.cpu.other.toFixed(2)}${r.cpu.other > 0.15 ? ' (noisy)' : ''}` : 'n/a';
    lines.push(
      `| ${name} | ${operation} | ${concurrency} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ` +
        `${f.throughput.toFixed(0)} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} | ${r.errors} / ${f.errors} | ${cpu} | ${other} |`,
    );
  }
  return lines.join('\n');
}
