import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ServiceIdentity } from './certificate-identity';

/** The authenticated caller of a service-plane request, as the mTLS strategy established it. */
export const CurrentIdentity = createParamDecorator(
  (_data: unknown, context: ExecutionContext): ServiceIdentity =>
    context.switchToHttp().getRequest<{ user: ServiceIdentity }>().user,
);
