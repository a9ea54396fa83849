import type { AdminView, PasskeyView } from '@keyhold/contracts';
import type { AdminRecord, PasskeyRecord } from './admin.repository';

export function toAdminView(admin: AdminRecord): AdminView {
  return { id: admin.id, name: admin.name, role: admin.role, createdAt: admin.createdAt.toISOString() };
}

export function toPasskeyView(passkey: PasskeyRecord): PasskeyView {
  return {
    id: passkey.id,
    name: passkey.name,
    createdAt: passkey.createdAt.toISOString(),
    lastUsedAt: passkey.lastUsedAt ? passkey.lastUsedAt.toISOString() : null,
  };
}
