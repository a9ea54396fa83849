export {
  KeyholdClient,
  type KeyholdClientOptions,
  type KeyholdClientFileOptions,
  type DecryptResult,
  type DataKeyResult,
  type UnwrapResult,
  type HealthResponse,
  type RawResponse,
  type RawRequestOptions,
} from './keyhold-client';
export { KeyholdApiError, KeyholdItemError, KeyholdNetworkError } from './errors';
export type {
  CreateKeyRequest,
  UpdateKeyRequest,
  KeyView,
  KeyVersionView,
  KeyListView,
  EncryptResponse,
  WrapResponse,
  EncryptionContext,
} from '@keyhold/contracts';
