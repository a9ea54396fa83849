import { Controller, Get, Header } from '@nestjs/common';
import { AnyAuthenticatedCaller } from '@keyhold/auth';
import { EXPOSITION_CONTENT_TYPE } from '@keyhold/metrics';
import { ServerMetrics } from './server-metrics';

/** Prometheus scrapes with a client certificate, like any caller of the service plane; served while sealed too. */
@Controller('v1/metrics')
export class MetricsController {
  constructor(private readonly metrics: ServerMetrics) {}

  @Get()
  @AnyAuthenticatedCaller()
  @Header('content-type', EXPOSITION_CONTENT_TYPE)
  @Header('cache-control', 'no-store')
  render(): string {
    return this.metrics.render();
  }
}
