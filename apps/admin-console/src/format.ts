export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

export function addDays(from: Date, days: number): Date {
  return new Date(from.getTime() + days * 24 * 60 * 60 * 1000);
}

export const STATE_LABELS: Record<string, string> = {
  enabled: 'Enabled',
  disabled: 'Disabled',
  pending_destruction: 'Pending destruction',
  destroyed: 'Destroyed',
};

/** Whether an optional instant has passed (an expiry, a validity end). */
export function isPast(iso: string | null | undefined): boolean {
  return !!iso && Date.parse(iso) <= Date.now();
}
