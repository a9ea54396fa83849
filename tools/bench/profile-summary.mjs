// Summarises a V8 .cpuprofile (from `node tools/bench/run-bench.mjs --cpu-prof DIR`) in the terminal:
// the functions with the most self time, self time by package or workspace folder, and inclusive
// ("total") time of the heaviest functions.
//
// V8 samples on a wall-clock interval: when the thread is descheduled inside a system call, the time is
// charged to that call. With the load generator on the same cores, the server is often preempted right
// after writing an answer (the write wakes the client), so `writev` looks far heavier here than its
// on-CPU cost (compare `perf record -g -p PID`). Read the other frames relative to each other.
//
//   node tools/bench/profile-summary.mjs DIR/CPU.....cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length !== 1) {
  console.error('usage: node tools/bench/profile-summary.mjs FILE.cpuprofile [--top N]');
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));

// Self time per node, from the sample intervals.
const byId = new Map(profile.nodes.map((node) => [node.id, { ...node, self: 0 }]));
const parentOf = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
for (let i = 0; i < profile.samples.length; i += 1) {
  const node = byId.get(profile.samples[i]);
  node.self += (profile.timeDeltas[i] ?? 0) / 1000; // ms
}
const totalMs = [...byId.values()].reduce((sum, node) => sum + node.self, 0);
const idleMs = [...byId.values()].filter((n) => n.callFrame.functionName === '(idle)').reduce((s, n) => s + n.self, 0);
const busyMs = totalMs - idleMs;

function where(frame) {
  const url = frame.url || '';
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const repo = /\/(apps|libs|migrations|tools)\/([^/]+)/.exec(url);
  return repo ? `${repo[1]}/${repo[2]}` : url;
}
const label = (frame) => {
  const file = (frame.url || '').replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(apps|libs)\//, '$1/');
  return `${frame.functionName || '(anonymous)'}  ${file}:${frame.lineNumber + 1}`;
};
const pct = (ms) => `${((ms / busyMs) * 100).toFixed(1).padStart(5)} %`;

// Self time, merged across nodes of the same function.
const selfByFunction = new Map();
const selfByPlace = new Map();
for (const node of byId.values()) {
  if (node.callFrame.functionName === '(idle)') continue;
  const key = label(node.callFrame);
  selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + node.self);
  const place = where(node.callFrame);
  selfByPlace.set(place, (selfByPlace.get(place) ?? 0) + node.self);
}

// Inclusive time per function (counted once per sample even when recursive).
const inclusive = new Map();
for (let i = 0; i < profile.samples.length; i += 1) {
  const seen = new Set();
  for (let id = profile.samples[i]; id !== undefined; id = parentOf.get(id)) {
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(idle)' || frame.functionName === '(root)') continue;
    const key = label(frame);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
}

const show = (title, map, n) => {
  console.log(`\n${title}`);
  for (const [key, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${pct(ms)}  ${ms.toFixed(0).padStart(7)} ms  ${key}`);
  }
};
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
console.log(`profile: ${seconds(totalMs)}, busy ${seconds(busyMs)} (percentages: of busy time)`);
show('self time by package / workspace folder', selfByPlace, top);
show('self time by function', selfByFunction, top);
show('inclusive time by function', inclusive, top);
