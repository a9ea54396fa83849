import { Body, Controller, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import {
  type CreateKeyRequest,
  type KeyListView,
  type KeyView,
  type ListKeysQuery,
  type ScheduleDestructionRequest,
  type UpdateKeyRequest,
  createKeyRequestSchema,
  listKeysQuerySchema,
  scheduleDestructionRequestSchema,
  updateKeyRequestSchema,
  versionParamSchema,
} from '@keyhold/contracts';
import { CurrentIdentity, GRANT_POLICY_SOURCE, type GrantPolicySource, RequireOperation, type ServiceIdentity } from '@keyhold/auth';
import { KeyNamePipe } from '../common/key-name.pipe';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { ZodPipe } from '../common/zod-body.pipe';
import { KeysService } from './keys.service';

const optionalBody = new ZodPipe(scheduleDestructionRequestSchema.optional().transform((body) => body ?? {}));

@Controller('v1/keys')
export class KeysController {
  constructor(
    private readonly keys: KeysService,
    @Inject(GRANT_POLICY_SOURCE) private readonly grants: GrantPolicySource,
  ) {}

  @Post()
  @RequireOperation('create', 'handler')
  create(
    @CurrentIdentity() caller: ServiceIdentity,
    @Body(new ZodPipe(createKeyRequestSchema)) body: CreateKeyRequest,
    @RequestAuditScope() audit: AuditScope | undefined,
  ): Promise<KeyView> {
    this.grants.current().authorize(caller.id, 'create', body.name);
    return this.keys.create(body, audit);
  }

  @Get()
  @RequireOperation('read', 'handler')
  list(
    @CurrentIdentity() caller: ServiceIdentity,
    @Query(new ZodPipe(listKeysQuerySchema, 'query string')) query: ListKeysQuery,
  ): Promise<KeyListView> {
    const policy = this.grants.current();
    return this.keys.list(query, (name) => policy.isAllowed(caller.id, 'read', name));
  }

  @Get(':name')
  @RequireOperation('read')
  get(@Param('name', KeyNamePipe) name: string): Promise<KeyView> {
    return this.keys.get(name);
  }

  @Patch(':name')
  @RequireOperation('manage')
  update(@Param('name', KeyNamePipe) name: string, @Body(new ZodPipe(updateKeyRequestSchema)) body: UpdateKeyRequest, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.update(name, body, audit);
  }

  @Post(':name/rotate')
  @HttpCode(200)
  @RequireOperation('rotate')
  rotate(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.rotate(name, audit);
  }

  @Post(':name/disable')
  @HttpCode(200)
  @RequireOperation('manage')
  disable(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.disable(name, audit);
  }

  @Post(':name/enable')
  @HttpCode(200)
  @RequireOperation('manage')
  enable(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.enable(name, audit);
  }

  @Post(':name/schedule-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  scheduleDestruction(@Param('name', KeyNamePipe) name: string, @Body(optionalBody) body: ScheduleDestructionRequest, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.scheduleDestruction(name, body.pendingDays, audit);
  }

  @Post(':name/cancel-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  cancelDestruction(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.cancelDestruction(name, audit);
  }

  @Post(':name/versions/:version/disable')
  @HttpCode(200)
  @RequireOperation('manage')
  disableVersion(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
    @RequestAuditScope() audit: AuditScope | undefined,
  ): Promise<KeyView> {
    return this.keys.disableVersion(name, version, audit);
  }

  @Post(':name/versions/:version/enable')
  @HttpCode(200)
  @RequireOperation('manage')
  enableVersion(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
    @RequestAuditScope() audit: AuditScope | undefined,
  ): Promise<KeyView> {
    return this.keys.enableVersion(name, version, audit);
  }

  @Post(':name/versions/:version/schedule-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  scheduleVersionDestruction(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
    @Body(optionalBody) body: ScheduleDestructionRequest,
    @RequestAuditScope() audit: AuditScope | undefined,
  ): Promise<KeyView> {
    return this.keys.scheduleVersionDestruction(name, version, body.pendingDays, audit);
  }

  @Post(':name/versions/:version/cancel-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  cancelVersionDestruction(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
    @RequestAuditScope() audit: AuditScope | undefined,
  ): Promise<KeyView> {
    return this.keys.cancelVersionDestruction(name, version, audit);
  }
}
