import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventLoopDelaySeconds, registerProcessMetrics } from './process-metrics';
import { Counter, Gauge, Histogram, MetricsRegistry, labelText } from './registry';

describe('metrics registry: Prometheus text exposition', () => {
  it('renders counters, gauges and cumulative histogram buckets with escaped labels', () => {
    const registry = new MetricsRegistry();
    const requests = registry.register(new Counter('keyhold_test_total', 'Test requests.'));
    const encrypt = requests.labels({ operation: 'encrypt', status: '200' });
    encrypt.inc();
    encrypt.inc(2);
    requests.inc({ operation: 'decrypt', status: '403' });
    registry.register(new Gauge('keyhold_test_sealed', 'Sealed.', () => 0));
    const latency = registry.register(new Histogram('keyhold_test_seconds', 'Latency.', [0.001, 0.01]));
    const series = latency.labels({ operation: 'encrypt' });
    for (const seconds of [0.0005, 0.001, 0.005, 2]) series.observe(seconds);
    assert.equal(
      registry.render(),
      [
        '# HELP keyhold_test_total Test requests.',
        '# TYPE keyhold_test_total counter',
        'keyhold_test_total{operation="encrypt",status="200"} 3',
        'keyhold_test_total{operation="decrypt",status="403"} 1',
        '# HELP keyhold_test_sealed Sealed.',
        '# TYPE keyhold_test_sealed gauge',
        'keyhold_test_sealed 0',
        '# HELP keyhold_test_seconds Latency.',
        '# TYPE keyhold_test_seconds histogram',
        'keyhold_test_seconds_bucket{operation="encrypt",le="0.001"} 2',
        'keyhold_test_seconds_bucket{operation="encrypt",le="0.01"} 3',
        'keyhold_test_seconds_bucket{operation="encrypt",le="+Inf"} 4',
        'keyhold_test_seconds_sum{operation="encrypt"} 2.0065',
        'keyhold_test_seconds_count{operation="encrypt"} 4',
        '',
      ].join('\n'),
    );
    assert.equal(encrypt.value, 3);
    assert.equal(labelText({ route: 'a"b\\c\nd' }), '{route="a\\"b\\\\c\\nd"}');
  });

  it('refuses a metric name registered twice', () => {
    const registry = new MetricsRegistry();
    registry.register(new Counter('keyhold_twice_total', 'Once.'));
    assert.throws(() => registry.register(new Gauge('keyhold_twice_total', 'Twice.')), /registered twice/);
  });
});

describe('process metrics', () => {
  it("reports the event loop's delay without the sampling interval the histogram includes", () => {
    assert.equal(eventLoopDelaySeconds(10_215_423), 0.000215423);
    assert.equal(eventLoopDelaySeconds(25_000_000), 0.015);
    assert.equal(eventLoopDelaySeconds(9_000_000), 0, 'never negative');
  });

  it('renders the process series', () => {
    const registry = new MetricsRegistry();
    const process = registerProcessMetrics(registry);
    try {
      const text = registry.render();
      for (const series of ['process_resident_memory_bytes', 'nodejs_heap_used_bytes', 'process_cpu_seconds_total', 'process_start_time_seconds', 'nodejs_eventloop_delay_seconds{quantile="0.99"}']) {
        assert.match(text, new RegExp(`^${series.replace(/[{}.]/g, '\\$&')} \\d`, 'm'), series);
      }
    } finally {
      process.stop();
    }
  });
});
