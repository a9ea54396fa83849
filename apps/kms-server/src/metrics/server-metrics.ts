import { Counter, type CounterSeries, Gauge, Histogram, type HistogramSeries, MetricsRegistry, registerProcessMetrics } from '@keyhold/metrics';

/** What the server already knows, read when scraped. */
export interface ServerMetricSources {
  sealed(): boolean;
  cachedKeys(): number;
  /** Absent with the audit trail off. */
  audit?: {
    queuedRecords(): number;
    writeFailures(): number;
    checkpointSigningOk(): boolean;
    retentionFailures(): number;
    prunedRecords(): number;
    archivedBytes(): number;
  };
}

/**
 * The server's Prometheus metrics (GET /v1/metrics; README, Metrics): the cryptographic operations by operation
 * and status, the other routes of both planes by route and status, the audit trail's group commits, the seal, the
 * key cache, and the process. Labels are operation names, route templates and status codes: never key names,
 * identities, key material or request content.
 */
export class ServerMetrics {
  private readonly registry = new MetricsRegistry();
  private readonly cryptoRequests = this.registry.register(
    new Counter('keyhold_crypto_requests_total', 'Cryptographic operations answered on the service plane, by operation and HTTP status.'),
  );
  private readonly cryptoDuration = this.registry.register(
    new Histogram('keyhold_crypto_request_duration_seconds', "Cryptographic operations, from the request to the answer (the audit record's commit included), by operation."),
  );
  private readonly httpRequests = this.registry.register(
    new Counter('keyhold_http_requests_total', 'Requests answered by the routes other than the cryptographic operations, by plane, route template and HTTP status.'),
  );
  private readonly httpDuration = this.registry.register(
    new Histogram('keyhold_http_request_duration_seconds', 'Requests answered by the routes other than the cryptographic operations, by plane and route template.'),
  );
  private readonly auditBatches = this.registry.register(
    new Histogram('keyhold_audit_batch_duration_seconds', 'Group commits of hot-path audit records, from sending the batch to its durable commit.'),
  ).labels();
  private readonly auditRecords = this.registry.register(new Counter('keyhold_audit_records_total', 'Audit records group-committed by this instance.')).labels();
  /** Pre-resolved per operation and status: the hot path does a map lookup, not label formatting. */
  private readonly cryptoSeries = new Map<string, { count: CounterSeries; duration: HistogramSeries }>();

  constructor(sources: ServerMetricSources) {
    this.registry.register(new Gauge('keyhold_sealed', '1 while this instance is sealed (serving no key), else 0.', () => (sources.sealed() ? 1 : 0)));
    this.registry.register(new Gauge('keyhold_key_cache_keys', 'Keys whose unwrapped versions this instance holds in its cache.', sources.cachedKeys));
    const audit = sources.audit;
    if (audit) {
      this.registry.register(new Gauge('keyhold_audit_queued_records', 'Audit records waiting for their group commit.', audit.queuedRecords));
      this.registry.register(new Counter('keyhold_audit_write_failures_total', 'Group commits that failed (their requests answered 503: audit fails closed).', audit.writeFailures));
      this.registry.register(
        new Gauge(
          'keyhold_audit_checkpoint_signing_ok',
          "1 when this instance's last checkpoint attempt signed (or none was refused); 0 after a refusal: the chain since the last checkpoint did not verify.",
          () => (audit.checkpointSigningOk() ? 1 : 0),
        ),
      );
      this.registry.register(
        new Counter(
          'keyhold_audit_retention_failures_total',
          'Passes of the standing retention that could not prune: the records due do not verify (tampering), or the database failed.',
          audit.retentionFailures,
        ),
      );
      this.registry.register(new Counter('keyhold_audit_pruned_records_total', 'Audit records this instance pruned, by request or by the standing retention.', audit.prunedRecords));
      this.registry.register(
        new Counter('keyhold_audit_archived_bytes_total', 'Bytes of the archives this instance wrote before pruning (KEYHOLD_AUDIT_ARCHIVE_DIR).', audit.archivedBytes),
      );
    }
    registerProcessMetrics(this.registry);
  }

  /** A cryptographic operation answered (`operation`: `encrypt`, `encrypt.batch` …). */
  cryptoAnswered(operation: string, status: number, seconds: number): void {
    const id = `${operation} ${status}`;
    let series = this.cryptoSeries.get(id);
    if (!series) {
      series = { count: this.cryptoRequests.labels({ operation, status: String(status) }), duration: this.cryptoDuration.labels({ operation }) };
      this.cryptoSeries.set(id, series);
    }
    series.count.inc();
    series.duration.observe(seconds);
  }

  /** A request served by the framework (`route`: its template, `unknown-route` when none matched). */
  httpAnswered(plane: 'service' | 'admin', route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ plane, route, status: String(status) });
    this.httpDuration.observe({ plane, route }, seconds);
  }

  auditBatchCommitted(records: number, seconds: number): void {
    this.auditBatches.observe(seconds);
    this.auditRecords.inc(records);
  }

  render(): string {
    return this.registry.render();
  }
}
