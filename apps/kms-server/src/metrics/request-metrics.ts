import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from './server-metrics';

/** Counts and times every request a plane's framework routes answer, by route template (not by path: no key names). */
export function registerRequestMetrics(fastify: FastifyInstance, plane: 'service' | 'admin', metrics: ServerMetrics): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.httpAnswered(plane, request.routeOptions.url ?? 'unknown-route', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
