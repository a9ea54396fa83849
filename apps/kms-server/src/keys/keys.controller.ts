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
  ): Promise<KeyView> {
    this.grants.current().authorize(caller.id, 'create', body.name);
    return this.keys.create(body);
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
  update(@Param('name', KeyNamePipe) name: string, @Body(new ZodPipe(updateKeyRequestSchema)) body: UpdateKeyRequest): Promise<KeyView> {
    return this.keys.update(name, body);
  }

  @Post(':name/rotate')
  @HttpCode(200)
  @RequireOperation('rotate')
  rotate(@Param('name', KeyNamePipe) name: string): Promise<KeyView> {
    return this.keys.rotate(name);
  }

  @Post(':name/disable')
  @HttpCode(200)
  @RequireOperation('manage')
  disable(@Param('name', KeyNamePipe) name: string): Promise<KeyView> {
    return this.keys.disable(name);
  }

  @Post(':name/enable')
  @HttpCode(200)
  @RequireOperation('manage')
  enable(@Param('name', KeyNamePipe) name: string): Promise<KeyView> {
    return this.keys.enable(name);
  }

  @Post(':name/schedule-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  scheduleDestruction(@Param('name', KeyNamePipe) name: string, @Body(optionalBody) body: ScheduleDestructionRequest): Promise<KeyView> {
    return this.keys.scheduleDestruction(name, body.pendingDays);
  }

  @Post(':name/cancel-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  cancelDestruction(@Param('name', KeyNamePipe) name: string): Promise<KeyView> {
    return this.keys.cancelDestruction(name);
  }

  @Post(':name/versions/:version/disable')
  @HttpCode(200)
  @RequireOperation('manage')
  disableVersion(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
  ): Promise<KeyView> {
    return this.keys.disableVersion(name, version);
  }

  @Post(':name/versions/:version/enable')
  @HttpCode(200)
  @RequireOperation('manage')
  enableVersion(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
  ): Promise<KeyView> {
    return this.keys.enableVersion(name, version);
  }

  @Post(':name/versions/:version/schedule-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  scheduleVersionDestruction(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
    @Body(optionalBody) body: ScheduleDestructionRequest,
  ): Promise<KeyView> {
    return this.keys.scheduleVersionDestruction(name, version, body.pendingDays);
  }

  @Post(':name/versions/:version/cancel-destruction')
  @HttpCode(200)
  @RequireOperation('manage')
  cancelVersionDestruction(
    @Param('name', KeyNamePipe) name: string,
    @Param('version', new ZodPipe(versionParamSchema, 'version')) version: number,
  ): Promise<KeyView> {
    return this.keys.cancelVersionDestruction(name, version);
  }
}
