import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import {
  type BatchResponse,
  type DatakeyResponse,
  type DecryptResponse,
  type EncryptResponse,
  type RandomResponse,
  type UnwrapResponse,
  type WrapResponse,
  datakeyRequestSchema,
  decryptBatchRequestSchema,
  decryptRequestSchema,
  encryptBatchRequestSchema,
  encryptRequestSchema,
  randomRequestSchema,
  reencryptBatchRequestSchema,
  reencryptRequestSchema,
  unwrapRequestSchema,
  wrapRequestSchema,
} from '@keyhold/contracts';
import { CurrentIdentity, RequireOperation, type ServiceIdentity } from '@keyhold/auth';
import type { z } from 'zod';
import { KeyNamePipe } from '../common/key-name.pipe';
import { ZodPipe } from '../common/zod-body.pipe';
import { CryptoOpsService } from './crypto-ops.service';

type Parsed<T extends z.ZodType> = z.output<T>;

@Controller('v1')
export class CryptoOpsController {
  constructor(private readonly crypto: CryptoOpsService) {}

  @Post('keys/:name/encrypt')
  @HttpCode(200)
  @RequireOperation('encrypt')
  encrypt(
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(encryptRequestSchema)) body: Parsed<typeof encryptRequestSchema>,
  ): Promise<EncryptResponse> {
    return this.crypto.encrypt(name, body.plaintext, body.context);
  }

  @Post('keys/:name/decrypt')
  @HttpCode(200)
  @RequireOperation('decrypt')
  decrypt(
    @CurrentIdentity() caller: ServiceIdentity,
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(decryptRequestSchema)) body: Parsed<typeof decryptRequestSchema>,
  ): Promise<DecryptResponse> {
    return this.crypto.decryptResponse(body.ciphertext, body.context, name, caller.id);
  }

  @Post('decrypt')
  @HttpCode(200)
  @RequireOperation('decrypt', 'handler')
  decryptAny(
    @CurrentIdentity() caller: ServiceIdentity,
    @Body(new ZodPipe(decryptRequestSchema)) body: Parsed<typeof decryptRequestSchema>,
  ): Promise<DecryptResponse> {
    return this.crypto.decryptResponse(body.ciphertext, body.context, null, caller.id);
  }

  @Post('keys/:name/reencrypt')
  @HttpCode(200)
  @RequireOperation('reencrypt')
  reencrypt(
    @CurrentIdentity() caller: ServiceIdentity,
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(reencryptRequestSchema)) body: Parsed<typeof reencryptRequestSchema>,
  ): Promise<EncryptResponse> {
    return this.crypto.reencrypt(name, body.ciphertext, body.context, caller.id);
  }

  @Post('keys/:name/datakey')
  @HttpCode(200)
  @RequireOperation('datakey')
  datakey(
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(datakeyRequestSchema.optional().transform((body) => body ?? {})))
    body: Parsed<typeof datakeyRequestSchema>,
  ): Promise<DatakeyResponse> {
    return this.crypto.generateDataKey(name, body.bytes ?? 32, body.context, body.withPlaintext ?? true);
  }

  @Post('keys/:name/wrap')
  @HttpCode(200)
  @RequireOperation('wrap')
  async wrap(
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(wrapRequestSchema)) body: Parsed<typeof wrapRequestSchema>,
  ): Promise<WrapResponse> {
    return this.crypto.encrypt(name, body.key, body.context);
  }

  @Post('keys/:name/unwrap')
  @HttpCode(200)
  @RequireOperation('unwrap')
  async unwrap(
    @CurrentIdentity() caller: ServiceIdentity,
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(unwrapRequestSchema)) body: Parsed<typeof unwrapRequestSchema>,
  ): Promise<UnwrapResponse> {
    const result = await this.crypto.decrypt(body.ciphertext, body.context, name, caller.id);
    return { key: result.plaintext.toString('base64'), keyName: result.keyName, keyVersion: result.keyVersion };
  }

  @Post('random')
  @HttpCode(200)
  @RequireOperation('random', 'handler')
  random(@Body(new ZodPipe(randomRequestSchema)) body: Parsed<typeof randomRequestSchema>): RandomResponse {
    return this.crypto.random(body.bytes);
  }

  @Post('keys/:name/encrypt/batch')
  @HttpCode(200)
  @RequireOperation('encrypt')
  encryptBatch(
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(encryptBatchRequestSchema)) body: Parsed<typeof encryptBatchRequestSchema>,
  ): Promise<BatchResponse<EncryptResponse>> {
    return this.results(this.crypto.batch(body.items, (item) => this.crypto.encrypt(name, item.plaintext, item.context)));
  }

  @Post('keys/:name/decrypt/batch')
  @HttpCode(200)
  @RequireOperation('decrypt')
  decryptBatch(
    @CurrentIdentity() caller: ServiceIdentity,
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(decryptBatchRequestSchema)) body: Parsed<typeof decryptBatchRequestSchema>,
  ): Promise<BatchResponse<DecryptResponse>> {
    return this.results(
      this.crypto.batch(body.items, (item) => this.crypto.decryptResponse(item.ciphertext, item.context, name, caller.id)),
    );
  }

  @Post('keys/:name/reencrypt/batch')
  @HttpCode(200)
  @RequireOperation('reencrypt')
  reencryptBatch(
    @CurrentIdentity() caller: ServiceIdentity,
    @Param('name', KeyNamePipe) name: string,
    @Body(new ZodPipe(reencryptBatchRequestSchema)) body: Parsed<typeof reencryptBatchRequestSchema>,
  ): Promise<BatchResponse<EncryptResponse>> {
    return this.results(
      this.crypto.batch(body.items, (item) => this.crypto.reencrypt(name, item.ciphertext, item.context, caller.id)),
    );
  }

  private async results<T>(pending: Promise<T[]>): Promise<{ results: T[] }> {
    return { results: await pending };
  }
}
