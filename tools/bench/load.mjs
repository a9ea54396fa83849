// Closed-loop HTTP load generator for the benchmark (tools/bench/run-bench.mjs), on undici.
//
// One undici Pool with `concurrency` keep-alive connections (mutual TLS, pipelining 1) and
// `concurrency` async workers, each issuing its next request as soon as the previous one answered.
// Requests that start during the warm-up are discarded; requests that start during the measured
// window are timed with process.hrtime.bigint() from just before `pool.request()` to the last byte
// of the response body. Any non-2xx answer, or a request that fails outright, is an error: counted,
// reported, and the run is flagged.
//
// It runs in the caller's process, so it competes with the server for the same CPU cores: compare
// servers measured by it in the same run (the Keyhold / bare ratio), not absolute numbers across
// machines.
import { Pool } from 'undici';

/**
 * @param {object} options
 * @param {string} options.origin              e.g. https://127.0.0.1:8443
 * @param {string} options.path                e.g. /v1/keys/bench/encrypt
 * @param {string} [options.method]            default POST
 * @param {string|Buffer} [options.body]       request body (sent with content-type application/json)
 * @param {number} options.concurrency         connections = workers
 * @param {number} [options.durationMs]        measured window, default 8000
 * @param {number} [options.warmupMs]          discarded warm-up, default 2000
 * @param {{ca: string|Buffer, cert: string|Buffer, key: string|Buffer, servername?: string}} options.tls
 * @returns {Promise<LoadResult>}
 */
export async function runLoad(options) {
  const {
    origin,
    path,
    method = 'POST',
    body,
    concurrency,
    durationMs = 8000,
    warmupMs = 2000,
    tls,
  } = options;
  const pool = new Pool(origin, {
    connections: concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    connect: { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.servername, rejectUnauthorized: true },
  });
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };

  const started = process.hrtime.bigint();
  const measureFrom = started + BigInt(Math.round(warmupMs * 1e6));
  const measureUntil = measureFrom + BigInt(Math.round(durationMs * 1e6));

  const latencies = []; // ms, measured window only
  let errors = 0;
  const errorSamples = new Map(); // "status: body" -> count
  const noteError = (what) => {
    errors += 1;
    const key = what.slice(0, 200);
    if (errorSamples.size < 10 || errorSamples.has(key)) errorSamples.set(key, (errorSamples.get(key) ?? 0) + 1);
  };
  let lastEnd = measureFrom;

  const worker = async () => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= measureUntil) return;
      const measured = t0 >= measureFrom;
      let failure = null;
      try {
        const res = await pool.request({ path, method, headers, body });
        const text = await res.body.text();
        if (res.statusCode < 200 || res.statusCode > 299) failure = `${res.statusCode}: ${text}`;
      } catch (error) {
        failure = `request failed: ${error.code ?? ''} ${error.message}`;
      }
      const t1 = process.hrtime.bigint();
      if (!measured) continue;
      if (failure !== null) {
        noteError(failure);
      } else {
        // Keep sub-millisecond precision: microseconds as a BigInt, then to ms.
        latencies.push(Number((t1 - t0) / 1000n) / 1000);
      }
      if (t1 > lastEnd) lastEnd = t1;
    }
  };

  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await pool.close().catch(() => pool.destroy());
  }

  // The window is [measureFrom, last completion of a measured request]: requests in flight when the
  // window closes finish (at most `concurrency` of them), and their time is counted with them.
  const windowMs = Number((lastEnd - measureFrom) / 1000n) / 1000;
  latencies.sort((a, b) => a - b);
  const completed = latencies.length;
  return {
    concurrency,
    requests: completed,
    errors,
    errorSamples: [...errorSamples].map(([what, count]) => ({ what, count })),
    windowMs,
    throughput: windowMs > 0 ? (completed * 1000) / windowMs : 0,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: completed ? latencies[completed - 1] : NaN,
    mean: completed ? latencies.reduce((s, x) => s + x, 0) / completed : NaN,
  };
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** One request with the same TLS options, for set-up and health checks. Answers {status, body}. */
export async function requestOnce({ origin, path, method = 'GET', body, tls, timeoutMs = 5000 }) {
  const pool = new Pool(origin, {
    connections: 1,
    connect: { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.servername, timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  try {
    const res = await pool.request({
      path,
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, text, json };
  } finally {
    await pool.close().catch(() => pool.destroy());
  }
}

/**
 * @typedef {object} LoadResult
 * @property {number} concurrency
 * @property {number} requests      2xx answers to requests started in the measured window
 * @property {number} errors        non-2xx answers and failed requests in the measured window
 * @property {{what: string, count: number}[]} errorSamples
 * @property {number} windowMs      measured window, up to the last measured completion
 * @property {number} throughput    requests / window, per second
 * @property {number} p50           ms
 * @property {number} p99           ms
 * @property {number} max           ms
 * @property {number} mean          ms
 */
