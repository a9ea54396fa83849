import type { AdminRole } from '@keyhold/contracts';

// What the console offers each role. The server decides; this only keeps buttons a role cannot use out of sight.

/** Create, rotate, disable, schedule destruction, edit policies. */
export const canChangeKeys = (role: AdminRole) => role === 'admin' || role === 'operator';

/** Invite and manage admins, grants and certificates; request, approve and reject sensitive operations. */
export const canAdminister = (role: AdminRole) => role === 'admin';

/** Read and export the audit trail (the server allows auditors and admins). */
export const canAudit = (role: AdminRole) => role === 'admin' || role === 'auditor';

/** Read the master key's versions and rewrap progress (the server allows every role); rotating and retiring are for admins. */
export const canReadMasterKey = (role: AdminRole) => role === 'admin' || role === 'operator' || role === 'auditor';
