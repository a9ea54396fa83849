/**
 * A small Prometheus registry (text exposition format 0.0.4): per-RPC latency histograms and counters by
 * method and gRPC code, upstream (Keyhold) call latencies, and an info metric of sha256(key_id). Labels hold
 * method names, status code names and hashes only: never key material, plaintext or ciphertext.
 */
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[] = RPC_BUCKETS,
  ) {}

  observe(labels: Labels, seconds: number): void {
    const id = labelText(labels);
    let s = this.series.get(id);
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(id, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= this.buckets[i]) s.counts[i] += 1;
    s.sum += seconds;
    s.count += 1;
  }

  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((le, i) => out.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(le) })} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

class Counter {
  private readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels, by = 1): void {
    const id = labelText(labels);
    const s = this.series.get(id) ?? { labels, value: 0 };
    s.value += by;
    this.series.set(id, s);
  }

  get(labels: Labels): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }

  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const s of this.series.values()) out.push(`${this.name}${labelText(s.labels)} ${s.value}`);
    return out;
  }
}

export class PluginMetrics {
  readonly rpcDuration = new Histogram('keyhold_kms_plugin_rpc_duration_seconds', 'KMS v2 gRPC call latency, by method and gRPC status code.');
  readonly rpcTotal = new Counter('keyhold_kms_plugin_rpc_total', 'KMS v2 gRPC calls, by method and gRPC status code.');
  readonly upstreamDuration = new Histogram('keyhold_kms_plugin_upstream_duration_seconds', 'Keyhold service-plane calls made by the plugin, by operation and outcome.');
  readonly keyIdChanges = new Counter('keyhold_kms_plugin_key_id_changes_total', 'Times the current key_id changed (a rotation seen in Keyhold).');
  private keyIdHash: string | undefined;
  private keyVersion: number | undefined;
  private healthy = 0;
  private lastRefreshSeconds = 0;

  setKeyState(state: { keyIdHash: string; version: number } | undefined, healthy: boolean, lastRefreshMs: number): void {
    this.keyIdHash = state?.keyIdHash;
    this.keyVersion = state?.version;
    this.healthy = healthy ? 1 : 0;
    this.lastRefreshSeconds = lastRefreshMs / 1000;
  }

  render(): string {
    const lines: string[] = [
      ...this.rpcDuration.render(),
      ...this.rpcTotal.render(),
      ...this.upstreamDuration.render(),
      ...this.keyIdChanges.render(),
      '# HELP keyhold_kms_plugin_key_id_info The current key_id as sha256:<hex> (the form kube-apiserver uses), and the Keyhold key version.',
      '# TYPE keyhold_kms_plugin_key_id_info gauge',
    ];
    if (this.keyIdHash !== undefined) {
      lines.push(`keyhold_kms_plugin_key_id_info${labelText({ key_id_hash: this.keyIdHash, key_version: String(this.keyVersion) })} 1`);
    }
    lines.push(
      '# HELP keyhold_kms_plugin_healthy 1 when the last Keyhold check succeeded and the key can encrypt.',
      '# TYPE keyhold_kms_plugin_healthy gauge',
      `keyhold_kms_plugin_healthy ${this.healthy}`,
      '# HELP keyhold_kms_plugin_key_metadata_last_success_timestamp_seconds When the key metadata was last read from Keyhold.',
      '# TYPE keyhold_kms_plugin_key_metadata_last_success_timestamp_seconds gauge',
      `keyhold_kms_plugin_key_metadata_last_success_timestamp_seconds ${this.lastRefreshSeconds}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
