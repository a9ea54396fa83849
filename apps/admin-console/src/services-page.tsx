import { Certificates } from './certificates';
import { Grants } from './grants';
import { ReadOnlyNote } from './ui';

// Services are identities (URIs such as spiffe://prod/ns/payments/sa/api) that reach the service listener with a
// client certificate. Grants say what an identity may do with which keys; certificates say who a caller is.

export function ServicesPage({ canAdminister }: { canAdminister: boolean }) {
  return (
    <main className="page">
      <div className="page-title">
        <h1>Services</h1>
      </div>
      {!canAdminister ? <ReadOnlyNote>Only admins change grants and certificates: you can read them here.</ReadOnlyNote> : null}
      <Grants canAdminister={canAdminister} />
      <Certificates canAdminister={canAdminister} />
    </main>
  );
}
