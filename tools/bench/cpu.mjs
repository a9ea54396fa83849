// Where the CPU went during a benchmark run, from /proc (Linux only; elsewhere it answers null).
//
// The bench shares its cores with whatever else runs on the machine, so each run reports how much CPU
// the processes under test used (the server and, for Keyhold, its embedded PostgreSQL), how much the
// load generator used, and how much went to anything else: a run during which other work took a
// noticeable share of the machine is flagged, since its figures (and its ratio) are not trustworthy.
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ: 100 on every Linux architecture Node runs on

function readProcesses() {
  const processes = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ... utime stime ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    processes.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  return processes;
}

function busyTicks() {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
  return user + nice + system + irq + softirq + (steal || 0);
}

/**
 * @param {Record<string, number|undefined>} roots  label -> pid; descendants of a root count as
 *   `${label} children` (for Keyhold: its embedded PostgreSQL), unless they are a root themselves.
 * @returns {{stop(): Record<string, number> & {other: number, seconds: number}} | null}  CPU use in cores
 */
export function startCpuSampling(roots) {
  let before;
  try {
    before = { at: process.hrtime.bigint(), busy: busyTicks(), processes: readProcesses() };
  } catch {
    return null;
  }
  const rootOf = new Map(Object.entries(roots).filter(([, pid]) => pid).map(([label, pid]) => [pid, label]));
  return {
    stop() {
      const at = process.hrtime.bigint();
      const busy = busyTicks();
      const processes = readProcesses();
      const seconds = Number(at - before.at) / 1e9;
      const use = Object.fromEntries([...rootOf.values()].flatMap((label) => [[label, 0], [`${label} children`, 0]]));
      let ours = 0;
      for (const [pid, { ticks }] of processes) {
        const delta = ticks - (before.processes.get(pid)?.ticks ?? 0);
        if (delta <= 0) continue;
        const label = classify(pid, processes, rootOf);
        if (!label) continue;
        use[label] += delta;
        ours += delta;
      }
      const result = { seconds };
      for (const [label, ticks] of Object.entries(use)) result[label] = ticks / CLOCK_TICKS / seconds;
      result.other = Math.max(0, (busy - before.busy - ours) / CLOCK_TICKS / seconds);
      return result;
    },
  };
}

function classify(pid, processes, rootOf) {
  if (rootOf.has(pid)) return rootOf.get(pid);
  for (let p = processes.get(pid)?.ppid, hops = 0; p && hops < 64; p = processes.get(p)?.ppid, hops += 1) {
    if (rootOf.has(p)) return `${rootOf.get(p)} children`;
  }
  return null;
}
