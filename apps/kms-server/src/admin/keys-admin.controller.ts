import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  type CreateKeyRequest,
  type KeyListView,
  type KeyUsageHistoryView,
  type KeyView,
  type ListKeysQuery,
  type ScheduleDestructionRequest,
  type UpdateKeyRequest,
  createKeyRequestSchema,
  listKeysQuerySchema,
  scheduleDestructionRequestSchema,
  updateKeyRequestSchema,
  usageHistoryQuerySchema,
  type UsageHistoryQuery,
  versionParamSchema,
} from '@keyhold/contracts';
import { KeyNamePipe } from '../common/key-name.pipe';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { ZodPipe } from '../common/zod-body.pipe';
import { KeysService } from '../keys/keys.service';
import { Roles } from './admin-auth.guards';

const optionalBody = new ZodPipe(scheduleDestructionRequestSchema.optional().transform((body) => body ?? {}));
const versionPipe = new ZodPipe(versionParamSchema, 'version');

/**
 * The key lifecycle from the admin plane: the same KeysService as the service plane, behind sessions and
 * roles. Operators and admins change keys; auditors read. Per-version usage is in every key view.
 */
@Controller('api/v1/keys')
export class KeysAdminController {
  constructor(private readonly keys: KeysService) {}

  @Get()
  @Roles('admin', 'operator', 'auditor')
  list(@Query(new ZodPipe(listKeysQuerySchema, 'query string')) query: ListKeysQuery): Promise<KeyListView> {
    return this.keys.list(query, () => true);
  }

  @Post()
  @Roles('admin', 'operator')
  create(@Body(new ZodPipe(createKeyRequestSchema)) body: CreateKeyRequest, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.create(body, audit);
  }

  @Get(':name')
  @Roles('admin', 'operator', 'auditor')
  get(@Param('name', KeyNamePipe) name: string): Promise<KeyView> {
    return this.keys.get(name);
  }

  /** Encryptions per version per day (30 days unless `?days=`), for the console's usage chart. */
  @Get(':name/usage')
  @Roles('admin', 'operator', 'auditor')
  usage(@Param('name', KeyNamePipe) name: string, @Query(new ZodPipe(usageHistoryQuerySchema, 'query string')) query: UsageHistoryQuery): Promise<KeyUsageHistoryView> {
    return this.keys.usageHistory(name, query.days ?? 30);
  }

  @Patch(':name')
  @Roles('admin', 'operator')
  update(@Param('name', KeyNamePipe) name: string, @Body(new ZodPipe(updateKeyRequestSchema)) body: UpdateKeyRequest, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.update(name, body, audit);
  }

  @Post(':name/rotate')
  @HttpCode(200)
  @Roles('admin', 'operator')
  rotate(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.rotate(name, audit);
  }

  @Post(':name/disable')
  @HttpCode(200)
  @Roles('admin', 'operator')
  disable(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.disable(name, audit);
  }

  @Post(':name/enable')
  @HttpCode(200)
  @Roles('admin', 'operator')
  enable(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.enable(name, audit);
  }

  @Post(':name/schedule-destruction')
  @HttpCode(200)
  @Roles('admin', 'operator')
  scheduleDestruction(@Param('name', KeyNamePipe) name: string, @Body(optionalBody) body: ScheduleDestructionRequest, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.scheduleDestruction(name, body.pendingDays, audit);
  }

  @Post(':name/cancel-destruction')
  @HttpCode(200)
  @Roles('admin', 'operator')
  cancelDestruction(@Param('name', KeyNamePipe) name: string, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.cancelDestruction(name, audit);
  }

  @Post(':name/versions/:version/disable')
  @HttpCode(200)
  @Roles('admin', 'operator')
  disableVersion(@Param('name', KeyNamePipe) name: string, @Param('version', versionPipe) version: number, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.disableVersion(name, version, audit);
  }

  @Post(':name/versions/:version/enable')
  @HttpCode(200)
  @Roles('admin', 'operator')
  enableVersion(@Param('name', KeyNamePipe) name: string, @Param('version', versionPipe) version: number, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.enableVersion(name, version, audit);
  }

  @Post(':name/versions/:version/schedule-destruction')
  @HttpCode(200)
  @Roles('admin', 'operator')
  scheduleVersionDestruction(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', versionPipe) version: number,
    @Body(optionalBody) body: ScheduleDestructionRequest,
    @RequestAuditScope() audit: AuditScope | undefined,
  ): Promise<KeyView> {
    return this.keys.scheduleVersionDestruction(name, version, body.pendingDays, audit);
  }

  @Post(':name/versions/:version/cancel-destruction')
  @HttpCode(200)
  @Roles('admin', 'operator')
  cancelVersionDestruction(@Param('name', KeyNamePipe) name: string, @Param('version', versionPipe) version: number, @RequestAuditScope() audit?: AuditScope): Promise<KeyView> {
    return this.keys.cancelVersionDestruction(name, version, audit);
  }
}
