import { type ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { AuditScope } from './audit-scope';

/** The request's AuditScope (its RequestAudit), for services that record a state change in its transaction. */
export const RequestAuditScope = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AuditScope | undefined => context.switchToHttp().getRequest<{ keyholdAudit?: AuditScope }>().keyholdAudit,
);
