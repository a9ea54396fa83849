import type { KeyView } from '@keyhold/contracts';
import { formatCount, formatDate } from './format';

// Keyhold counts encryptions per version (a running total and the last use), not per day. A version encrypts while it
// is primary, so the chart puts each version's count over the period it was primary: a bar from its creation to the
// next version's, as tall as its encryptions. Plain SVG, drawn with attributes only (the console's CSP allows no inline styles).

const WIDTH = 640;
const HEIGHT = 180;
const PAD = { top: 22, right: 12, bottom: 28, left: 12 };

export function UsageChart({ versionsOf, now = new Date() }: { versionsOf: KeyView; now?: Date }) {
  const versions = [...versionsOf.versions].sort((a, b) => a.version - b.version);
  const total = versions.reduce((sum, version) => sum + version.encryptions, 0);
  if (total === 0) return <p className="empty">No encryptions counted yet: the chart appears once the key is used.</p>;

  const spans = versions.map((version, index) => ({
    version,
    from: Date.parse(version.createdAt),
    to: index + 1 < versions.length ? Date.parse(versions[index + 1].createdAt) : Math.max(now.getTime(), Date.parse(version.createdAt) + 1),
  }));
  const start = spans[0].from;
  const end = spans[spans.length - 1].to;
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  // Versions made in quick succession still get a visible bar: every bar is at least 3% of the width.
  const minimum = plotWidth * 0.03;
  const raw = spans.map((span) => ((span.to - span.from) / Math.max(end - start, 1)) * plotWidth);
  const scale = plotWidth / raw.reduce((sum, width) => sum + Math.max(width, minimum), 0);
  const max = Math.max(...versions.map((version) => version.encryptions), 1);
  let x = PAD.left;
  const bars = spans.map((span, index) => {
    const width = Math.max(raw[index], minimum) * scale;
    const height = (span.version.encryptions / max) * plotHeight;
    const bar = { ...span, x, width, height, y: PAD.top + plotHeight - height };
    x += width;
    return bar;
  });
  const summary = versions.map((version) => `v${version.version}: ${formatCount(version.encryptions)}`).join(', ');

  return (
    <figure className="usage-chart" data-testid="usage-chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`Encryptions per version over time: ${summary}`}>
        <line x1={PAD.left} x2={WIDTH - PAD.right} y1={PAD.top + plotHeight} y2={PAD.top + plotHeight} stroke="#c7ccd5" />
        {bars.map((bar) => (
          <g key={bar.version.version} data-version={bar.version.version}>
            <title>{`v${bar.version.version}: ${formatCount(bar.version.encryptions)} encryptions, primary from ${formatDate(bar.version.createdAt)}`}</title>
            <rect x={bar.x + 1} y={bar.y} width={Math.max(bar.width - 2, 1)} height={Math.max(bar.height, 1)} rx={2} fill={bar.version.version === versionsOf.primaryVersion ? '#1d4ed8' : '#93c5fd'} />
            {bar.width >= 28 ? (
              <>
                <text x={bar.x + bar.width / 2} y={bar.y - 6} textAnchor="middle" fontSize={11} fill="#16181d">
                  {formatCount(bar.version.encryptions)}
                </text>
                <text x={bar.x + bar.width / 2} y={HEIGHT - 10} textAnchor="middle" fontSize={11} fill="#5b6270">
                  v{bar.version.version}
                </text>
              </>
            ) : null}
          </g>
        ))}
      </svg>
      <ul className="chart-legend small" aria-hidden="true">
        {versions.map((version) => (
          <li key={version.version} className={version.version === versionsOf.primaryVersion ? 'primary' : ''}>
            v{version.version}: {formatCount(version.encryptions)}
          </li>
        ))}
      </ul>
      <figcaption className="muted small">
        {formatDate(new Date(start).toISOString())} → now. Each bar is a version’s encryptions, across the time it was primary; the darker one is
        primary now.
      </figcaption>
    </figure>
  );
}
