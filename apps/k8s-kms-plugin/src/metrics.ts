import { Counter, Gauge, Histogram, MetricsRegistry, registerProcessMetrics } from '@keyhold/metrics';

/**
 * The plugin's Prometheus metrics (GET /metrics on its health listener): per-RPC latency histograms and counters by
 * method and gRPC code, upstream (Keyhold) call latencies, an info metric of sha256(key_id), and the process's own.
 * Labels hold method names, status code names and hashes only: never key material, plaintext or ciphertext.
 */
export class PluginMetrics {
  private readonly registry = new MetricsRegistry();
  readonly rpcDuration = this.registry.register(new Histogram('keyhold_kms_plugin_rpc_duration_seconds', 'KMS v2 gRPC call latency, by method and gRPC status code.'));
  readonly rpcTotal = this.registry.register(new Counter('keyhold_kms_plugin_rpc_total', 'KMS v2 gRPC calls, by method and gRPC status code.'));
  readonly upstreamDuration = this.registry.register(
    new Histogram('keyhold_kms_plugin_upstream_duration_seconds', 'Keyhold service-plane calls made by the plugin, by operation and outcome.'),
  );
  readonly keyIdChanges = this.registry.register(new Counter('keyhold_kms_plugin_key_id_changes_total', 'Times the current key_id changed (a rotation seen in Keyhold).'));
  private readonly keyIdInfo = this.registry.register(
    new Gauge('keyhold_kms_plugin_key_id_info', 'The current key_id as sha256:<hex> (the form kube-apiserver uses), and the Keyhold key version.'),
  );
  private readonly healthy = this.registry.register(new Gauge('keyhold_kms_plugin_healthy', '1 when the last Keyhold check succeeded and the key can encrypt.'));
  private readonly lastRefresh = this.registry.register(
    new Gauge('keyhold_kms_plugin_key_metadata_last_success_timestamp_seconds', 'When the key metadata was last read from Keyhold.'),
  );

  constructor() {
    this.healthy.set({}, 0);
    this.lastRefresh.set({}, 0);
    registerProcessMetrics(this.registry);
  }

  setKeyState(state: { keyIdHash: string; version: number } | undefined, healthy: boolean, lastRefreshMs: number): void {
    this.keyIdInfo.reset();
    if (state) this.keyIdInfo.set({ key_id_hash: state.keyIdHash, key_version: String(state.version) }, 1);
    this.healthy.set({}, healthy ? 1 : 0);
    this.lastRefresh.set({}, lastRefreshMs / 1000);
  }

  render(): string {
    return this.registry.render();
  }
}
