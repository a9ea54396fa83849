import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADMIN_ROUTES } from '../admin/openapi';
import { ADMIN_OPERATIONS } from './audit-operations';

describe('audit operation names', () => {
  it('names every admin route of the OpenAPI document (a new route needs its audit name)', () => {
    const missing = ADMIN_ROUTES.map((route) => `${route.method.toUpperCase()} ${route.path.replace(/\{(\w+)\}/g, ':$1')}`).filter(
      (route) => !ADMIN_OPERATIONS[route],
    );
    assert.deepEqual(missing, []);
  });
});
