import { Controller, Get } from '@nestjs/common';
import { PublicRoute } from './admin-auth.guards';
import { adminOpenApiDocument } from './openapi';

@Controller('docs')
export class DocsController {
  private readonly document = adminOpenApiDocument();

  @Get()
  @PublicRoute()
  openApi(): Record<string, unknown> {
    return this.document;
  }
}
