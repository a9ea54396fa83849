import { useState } from 'react';
import type { AdminRole, AdminView, InvitationView, OpenInvitationListView, OpenInvitationView, PendingOperationView, SensitiveOperation } from '@keyhold/contracts';
import { api } from './api';
import { RequestedOperation, requestOperation } from './operations';
import { formatDate } from './format';
import { ADMIN_ROLES } from './limits';
import { Card, ReadOnlyNote, Status, useAction, useResource } from './ui';

export const ROLE_DESCRIPTIONS: Record<AdminRole, string> = {
  admin: 'everything, including administrators, services and approvals',
  operator: 'keys: create, rotate, disable, schedule destruction',
  auditor: 'reads everything, changes nothing',
};

export function AdminsPage({ me, canAdminister }: { me: AdminView; canAdminister: boolean }) {
  const { data, setData, progress: loading, reload } = useResource<{ admins: AdminView[] }>('/api/v1/admins', 'administrators');
  const [inviting, setInviting] = useState(false);
  // The last removal or admin-role change requested here, with its outcome.
  const [requested, setRequested] = useState<PendingOperationView | null>(null);
  // Bumped when an invitation is made here: the open invitations load again.
  const [invitationsVersion, setInvitationsVersion] = useState(0);
  const admins = data?.admins ?? [];
  const replace = (updated: AdminView) =>
    setData((current) => (current ? { admins: current.admins.map((admin) => (admin.id === updated.id ? updated : admin)) } : current));
  return (
    <main className="page">
      <div className="page-title">
        <h1>Administrators</h1>
        {canAdminister ? (
          <button className="primary" onClick={() => setInviting((open) => !open)} aria-expanded={inviting}>
            Invite
          </button>
        ) : null}
      </div>
      {!canAdminister ? <ReadOnlyNote>Only admins invite, change roles or remove administrators.</ReadOnlyNote> : null}
      {inviting ? <InviteForm onClose={() => setInviting(false)} onInvited={() => setInvitationsVersion((version) => version + 1)} /> : null}
      <Card>
        <Status progress={loading} />
        {requested ? <RequestedOperation operation={requested} what={requestedWhat(requested, admins)} /> : null}
        <table className="table responsive" data-testid="admins-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Since</th>
              {canAdminister ? (
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {admins.map((admin) => (
              <AdminRow
                key={admin.id}
                admin={admin}
                isMe={admin.id === me.id}
                canAdminister={canAdminister}
                onChanged={replace}
                onRequested={(operation) => {
                  setRequested(operation);
                  if (operation.status === 'executed') reload();
                }}
              />
            ))}
          </tbody>
        </table>
        <ul className="roles muted small">
          {ADMIN_ROLES.map((role) => (
            <li key={role}>
              <strong>{role}</strong>: {ROLE_DESCRIPTIONS[role]}
            </li>
          ))}
        </ul>
      </Card>
      {canAdminister ? <OpenInvitations key={invitationsVersion} admins={admins} /> : null}
    </main>
  );
}

/** The invitations nobody used yet, with who made them; an admin revokes one sent to the wrong person. */
function OpenInvitations({ admins }: { admins: AdminView[] }) {
  const { data, setData, progress } = useResource<OpenInvitationListView>('/api/v1/admins/invitations', 'open invitations');
  const { progress: notice, setProgress: setNotice } = useAction();
  const invitations = data?.invitations ?? [];
  const revoked = (id: string) => {
    setData((current) => (current ? { invitations: current.invitations.filter((invitation) => invitation.id !== id) } : current));
    setNotice({ kind: 'ok', text: 'Invitation revoked: its link no longer works.' });
  };
  return (
    <Card title="Open invitations" testId="open-invitations">
      <Status progress={progress} />
      <Status progress={notice} />
      {data && invitations.length === 0 ? <p className="muted">No invitation is waiting to be used.</p> : null}
      {invitations.length > 0 ? (
        <table className="table responsive" data-testid="invitations-table">
          <thead>
            <tr>
              <th>Role</th>
              <th>Name</th>
              <th>Invited by</th>
              <th>Expires</th>
              <th>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {invitations.map((invitation) => (
              <InvitationRow
                key={invitation.id}
                invitation={invitation}
                inviter={admins.find((admin) => admin.id === invitation.createdBy)?.name ?? 'a former administrator'}
                onRevoked={() => revoked(invitation.id)}
              />
            ))}
          </tbody>
        </table>
      ) : null}
    </Card>
  );
}

function InvitationRow({ invitation, inviter, onRevoked }: { invitation: OpenInvitationView; inviter: string; onRevoked: () => void }) {
  const { progress, setProgress, run, busy } = useAction();
  const [revoking, setRevoking] = useState(false);
  const what = invitation.name ? `the invitation of ${invitation.name}` : `the ${invitation.role} invitation`;
  const revoke = async () => {
    setRevoking(false);
    const done = await run(
      `Revoking ${what}…`,
      () => api<string>('DELETE', `/api/v1/admins/invitations/${encodeURIComponent(invitation.id)}`).then(() => 'revoked'),
      () => '',
    );
    if (done) {
      setProgress({ kind: 'idle' });
      onRevoked();
    }
  };
  return (
    <tr data-invitation={invitation.id}>
      <td data-label="Role">{invitation.role}</td>
      <td data-label="Name">{invitation.name ?? <span className="muted">chosen by the invitee</span>}</td>
      <td data-label="Invited by">{inviter}</td>
      <td data-label="Expires">{formatDate(invitation.expiresAt)}</td>
      <td data-label="Actions" className="row-actions">
        {revoking ? (
          <span className="confirm">
            <button className="danger" onClick={() => void revoke()} disabled={busy}>
              Revoke
            </button>
            <button onClick={() => setRevoking(false)}>Keep</button>
          </span>
        ) : (
          <button onClick={() => setRevoking(true)} disabled={busy} aria-label={`Revoke ${what}…`}>
            Revoke…
          </button>
        )}
        <Status progress={progress} />
      </td>
    </tr>
  );
}

function AdminRow({
  admin,
  isMe,
  canAdminister,
  onChanged,
  onRequested,
}: {
  admin: AdminView;
  isMe: boolean;
  canAdminister: boolean;
  onChanged: (admin: AdminView) => void;
  onRequested: (operation: PendingOperationView) => void;
}) {
  const { progress, setProgress, run, busy } = useAction();
  const [removing, setRemoving] = useState(false);
  const request = async (waiting: string, operation: SensitiveOperation) => {
    const answer = await run(waiting, () => requestOperation(operation), () => '');
    if (answer) {
      setProgress({ kind: 'idle' });
      onRequested(answer);
    }
  };
  const changeRole = async (role: AdminRole) => {
    // Who holds the admin role is decided by approval (the requester's passkey, and the quorum's).
    if (role === 'admin' || admin.role === 'admin') {
      await request(`Waiting for your passkey: it signs making ${admin.name} ${role}…`, { kind: 'set-admin-role', adminId: admin.id, role });
      return;
    }
    const updated = await run(
      `Changing ${admin.name}’s role…`,
      () => api<AdminView>('PATCH', `/api/v1/admins/${encodeURIComponent(admin.id)}`, { body: { role } }),
      (changed) => `${changed.name} is now ${changed.role}.`,
    );
    if (updated) onChanged(updated);
  };
  const remove = async () => {
    setRemoving(false);
    await request(`Waiting for your passkey: it signs the removal of ${admin.name}…`, { kind: 'remove-admin', adminId: admin.id });
  };
  return (
    <tr data-admin={admin.name}>
      <td data-label="Name">
        {admin.name}
        {isMe ? <span className="tag">you</span> : null}
      </td>
      <td data-label="Role">
        {canAdminister ? (
          <select aria-label={`Role of ${admin.name}`} value={admin.role} disabled={busy} onChange={(event) => void changeRole(event.target.value as AdminRole)}>
            {ADMIN_ROLES.map((role) => (
              <option key={role} value={role}>
                {role}
              </option>
            ))}
          </select>
        ) : (
          admin.role
        )}
      </td>
      <td data-label="Since">{formatDate(admin.createdAt)}</td>
      {canAdminister ? (
        <td data-label="Actions" className="row-actions">
          {isMe ? null : removing ? (
            <span className="confirm">
              <button className="danger" onClick={() => void remove()} disabled={busy}>
                Request removal
              </button>
              <button onClick={() => setRemoving(false)}>Keep</button>
            </span>
          ) : (
            <button onClick={() => setRemoving(true)} disabled={busy}>
              Remove…
            </button>
          )}
          <Status progress={progress} />
        </td>
      ) : null}
    </tr>
  );
}

function InviteForm({ onClose, onInvited }: { onClose: () => void; onInvited: () => void }) {
  const [role, setRole] = useState<AdminRole>('operator');
  const [name, setName] = useState('');
  const [invitation, setInvitation] = useState<InvitationView | null>(null);
  const { progress, setProgress, run, busy } = useAction();

  if (invitation) {
    return (
      <Card title="Invitation link">
        <p>
          Send this link to the new <strong>{invitation.role}</strong> over a channel you trust. It works once, until{' '}
          <strong>{formatDate(invitation.expiresAt)}</strong>, and is shown only now.
        </p>
        <p className="secret-box">
          <code data-testid="invitation-link" className="break">
            {invitation.link}
          </code>
        </p>
        <div className="form-actions">
          <button
            onClick={() =>
              void navigator.clipboard
                .writeText(invitation.link)
                .then(() => setProgress({ kind: 'ok', text: 'Copied to the clipboard.' }))
                .catch(() => setProgress({ kind: 'error', text: 'The browser refused the clipboard; select the link and copy it.' }))
            }
          >
            Copy link
          </button>
          <button
            className="primary"
            onClick={() => {
              setInvitation(null); // the link leaves the page
              onClose();
            }}
          >
            Done
          </button>
        </div>
        <Status progress={progress} />
      </Card>
    );
  }

  return (
    <Card title="Invite an administrator">
      <form
        className="grid-form"
        onSubmit={(event) => {
          event.preventDefault();
          void run(
            'Making an invitation…',
            () => api<InvitationView>('POST', '/api/v1/admins/invitations', { body: { role, ...(name.trim() ? { name: name.trim() } : {}) } }),
            () => 'Invitation made.',
          ).then((made) => {
            if (!made) return;
            setInvitation(made);
            onInvited();
          });
        }}
      >
        <label>
          Role
          <select name="invite-role" value={role} onChange={(event) => setRole(event.target.value as AdminRole)}>
            {ADMIN_ROLES.map((value) => (
              <option key={value} value={value}>
                {value} — {ROLE_DESCRIPTIONS[value]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name (optional: the invitee can choose)
          <input name="invite-name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} />
        </label>
        <div className="form-actions">
          <button className="primary" type="submit" disabled={busy}>
            Create invitation link
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
      <Status progress={progress} />
    </Card>
  );
}

/** What a request made on this page is about, in a few words. */
function requestedWhat({ operation }: PendingOperationView, admins: AdminView[]): string | undefined {
  if (operation.kind !== 'remove-admin' && operation.kind !== 'set-admin-role') return undefined;
  const name = admins.find((admin) => admin.id === operation.adminId)?.name ?? 'the administrator';
  return operation.kind === 'remove-admin' ? `Removal of ${name}` : `${name} as ${operation.role}`;
}
