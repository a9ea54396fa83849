import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, type Labels, type MetricsRegistry } from './registry';

/** How often the event loop's delay is sampled (ms). */
const DELAY_RESOLUTION_MS = 10;

/**
 * A sample of `monitorEventLoopDelay` (ns) as the delay itself, in seconds: the histogram records the whole time
 * between two runs of its timer, the sampling interval included (an idle loop reads 10.2 ms at 10 ms).
 */
export function eventLoopDelaySeconds(sampleNs: number, resolutionMs: number = DELAY_RESOLUTION_MS): number {
  return Math.max(0, sampleNs - resolutionMs * 1e6) / 1e9;
}

/**
 * The process's own health, read at scrape time: resident memory, V8 heap, CPU time, start time, and the event
 * loop's delay since the previous scrape (what a request waits before its turn: on a busy single thread this rises
 * before latency does).
 */
export function registerProcessMetrics(registry: MetricsRegistry): { stop(): void } {
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  delay.enable();
  const startSeconds = Math.round((Date.now() - process.uptime() * 1000) / 1000);
  registry.register(new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss()));
  registry.register(new Gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.', () => process.memoryUsage().heapUsed));
  registry.register(new Gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', () => startSeconds));
  registry.register(
    new Counter('process_cpu_seconds_total', 'Total user and system CPU time spent, in seconds.', () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    }),
  );
  registry.register(
    new Gauge('nodejs_eventloop_delay_seconds', 'Event loop delay since the previous scrape: median, 99th percentile and maximum.', () => {
      const quantiles: Array<[Labels, number]> = [
        [{ quantile: '0.5' }, eventLoopDelaySeconds(delay.percentile(50))],
        [{ quantile: '0.99' }, eventLoopDelaySeconds(delay.percentile(99))],
        [{ quantile: '1' }, eventLoopDelaySeconds(delay.max)],
      ];
      delay.reset();
      return quantiles;
    }),
  );
  return { stop: () => delay.disable() };
}
