// The audit trail's cost on the hot path (issue #6: keep at least 80 % of the encrypt throughput without it).
// run-bench.mjs measures Keyhold encrypt with the audit trail (its normal rows), then starts a second Keyhold
// with KEYHOLD_AUDIT=off (accepted in development only) and measures encrypt again at the same levels.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const AUDIT_TARGET = 0.8;

const rps = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const ms = (value) => (Number.isFinite(value) ? value.toFixed(2) : '–');
const pct = (value) => (Number.isFinite(value) ? `${(value * 100).toFixed(0)} %` : '–');

/**
 * Starts Keyhold with KEYHOLD_AUDIT=off in its own home, creates the bench key, and measures encrypt at each
 * level with `run` (the bench's own runner, so the same load generator and warm-up). Returns one row a level.
 */
export async function measureWithoutAudit({ startKeyhold, stopChild, run, post, expectOk, keyName, encryptPath, payload, levels, roots, cleanup, log, certDir }) {
  const home = mkdtempSync(join(tmpdir(), 'keyhold-bench-noaudit-'));
  if (process.getuid?.() === 0) chmodSync(home, 0o711);
  // The same CA, server and operator certificates as the first Keyhold: the load generator's TLS settings fit
  // both (the development start-up only creates what is missing; master key and database are its own).
  for (const file of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'operator.crt', 'operator.key', 'grants.json']) {
    if (existsSync(join(certDir, file))) copyFileSync(join(certDir, file), join(home, file));
  }
  cleanup.push(() => rmSync(home, { recursive: true, force: true }));
  log(`starting Keyhold with KEYHOLD_AUDIT=off (KEYHOLD_HOME=${home}) for the audit comparison ...`);
  const keyhold = await startKeyhold(home, { KEYHOLD_AUDIT: 'off' });
  const measured = roots.keyhold;
  roots.keyhold = keyhold.proc.pid; // CPU sampling and quiet-waiting follow the server under load
  try {
    await expectOk('create key (audit off)', post(keyhold.origin, '/v1/keys', { name: keyName, algorithm: 'aes-256-gcm' }, keyhold.tls));
    const rows = [];
    for (const concurrency of levels) {
      rows.push({ concurrency, result: await run('Keyhold encrypt (audit off)', keyhold.origin, encryptPath, payload, concurrency) });
    }
    return rows;
  } finally {
    roots.keyhold = measured;
    await stopChild(keyhold.proc);
  }
}

/** Markdown: encrypt with and without the audit trail, and the ratio against the 80 % target. */
export function auditTable(rows, withoutAudit) {
  const lines = [
    `Audit trail cost (encrypt, group commit on; target: with audit ≥ ${pct(AUDIT_TARGET)} of without):`,
    '',
    '| concurrency | with audit req/s | p50 ms | p99 ms | without audit req/s | p50 ms | p99 ms | with / without |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const { concurrency, result: off } of withoutAudit) {
    const on = rows.find((row) => row.operation === 'encrypt' && row.concurrency === concurrency)?.keyhold;
    const ratio = on ? on.throughput / off.throughput : NaN;
    const verdict = Number.isFinite(ratio) ? ` (${ratio >= AUDIT_TARGET ? 'met' : '**NOT met**'})` : '';
    lines.push(
      `| ${concurrency} | ${rps(on?.throughput)} | ${ms(on?.p50)} | ${ms(on?.p99)} | ${rps(off.throughput)} | ${ms(off.p50)} | ${ms(off.p99)} | **${pct(ratio)}**${verdict} |`,
    );
  }
  return lines.join('\n');
}
