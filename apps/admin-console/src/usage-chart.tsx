import { useEffect, useRef } from 'react';
import type { KeyUsageHistoryView, KeyView } from '@keyhold/contracts';
import { formatCount } from './format';
import { Status, useResource } from './ui';

// Encryptions per UTC day over the last 30 days, one bar a day, stacked by the version that encrypted (Keyhold
// counts them per version per day as it flushes usage). Plain SVG, drawn with attributes only: the console's
// CSP allows no inline styles.

const DAYS = 30;
const DAY_MS = 86_400_000;
const WIDTH = 640;
const HEIGHT = 180;
const PAD = { top: 16, right: 8, bottom: 24, left: 8 };
const PRIMARY_FILL = '#1d4ed8';
const OTHER_FILLS = ['#93c5fd', '#a5b4fc', '#60a5fa', '#c7d2fe'];

export function UsageChart({ keyView }: { keyView: KeyView }) {
  const path = `/api/v1/keys/${encodeURIComponent(keyView.name)}/usage?days=${DAYS}`;
  const { data, progress, reload } = useResource<KeyUsageHistoryView>(path, 'usage');
  // New encryptions or a rotation change the picture: read it again (not at mount: useResource just did).
  const seen = useRef(`${keyView.encryptions}:${keyView.primaryVersion}`);
  useEffect(() => {
    const now = `${keyView.encryptions}:${keyView.primaryVersion}`;
    if (now === seen.current) return;
    seen.current = now;
    reload();
  }, [reload, keyView.encryptions, keyView.primaryVersion]);
  if (!data) return <Status progress={progress} />;

  const totals = new Map<number, number>();
  for (const entry of data.days) totals.set(entry.version, (totals.get(entry.version) ?? 0) + entry.encryptions);
  const versions = [...totals.keys()].sort((a, b) => a - b);
  if (versions.length === 0) return <p className="empty">No encryptions in the last {DAYS} days: the chart appears once the key is used.</p>;
  const fillOf = (version: number) =>
    version === keyView.primaryVersion ? PRIMARY_FILL : OTHER_FILLS[versions.filter((v) => v !== keyView.primaryVersion).indexOf(version) % OTHER_FILLS.length];

  const start = Date.parse(`${data.since}T00:00:00Z`);
  const days = Array.from({ length: DAYS }, (_, index) => new Date(start + index * DAY_MS).toISOString().slice(0, 10));
  const byDay = new Map<string, Array<{ version: number; encryptions: number }>>();
  for (const entry of data.days) byDay.set(entry.day, [...(byDay.get(entry.day) ?? []), entry]);
  const dayTotal = (day: string) => (byDay.get(day) ?? []).reduce((sum, entry) => sum + entry.encryptions, 0);
  const max = Math.max(...days.map(dayTotal), 1);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotWidth / DAYS;
  const summary = versions.map((version) => `v${version}: ${formatCount(totals.get(version) ?? 0)}`).join(', ');

  return (
    <figure className="usage-chart" data-testid="usage-chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`Encryptions per day over the last ${DAYS} days: ${summary}`}>
        <line x1={PAD.left} x2={WIDTH - PAD.right} y1={PAD.top + plotHeight} y2={PAD.top + plotHeight} stroke="#c7ccd5" />
        {days.map((day, index) => {
          let top = PAD.top + plotHeight;
          const entries = byDay.get(day) ?? [];
          return (
            <g key={day} data-day={day} data-encryptions={dayTotal(day)}>
              <title>{`${day}: ${entries.length ? entries.map((e) => `v${e.version} ${formatCount(e.encryptions)}`).join(', ') : 'no encryptions'}`}</title>
              {entries.map((entry) => {
                const height = Math.max((entry.encryptions / max) * plotHeight, 1);
                top -= height;
                return <rect key={entry.version} data-version={entry.version} x={PAD.left + index * slot + 1} y={top} width={Math.max(slot - 2, 1)} height={height} fill={fillOf(entry.version)} />;
              })}
            </g>
          );
        })}
        <text x={PAD.left} y={HEIGHT - 6} fontSize={11} fill="#5b6270">
          {days[0]}
        </text>
        <text x={WIDTH - PAD.right} y={HEIGHT - 6} fontSize={11} fill="#5b6270" textAnchor="end">
          today
        </text>
        <text x={WIDTH - PAD.right} y={PAD.top - 4} fontSize={11} fill="#5b6270" textAnchor="end">
          {`max ${formatCount(max)} a day`}
        </text>
      </svg>
      <ul className="chart-legend small" aria-hidden="true">
        {versions.map((version) => (
          <li key={version}>
            <svg width="11" height="11" viewBox="0 0 11 11" className="swatch">
              <rect width="11" height="11" rx="2" fill={fillOf(version)} />
            </svg>
            v{version}
            {version === keyView.primaryVersion ? ' (primary)' : ''}: {formatCount(totals.get(version) ?? 0)}
          </li>
        ))}
      </ul>
      <figcaption className="muted small">Encryptions per UTC day, stacked by the version that made them; counts reach Postgres every few seconds.</figcaption>
    </figure>
  );
}
