// CPU accounting of a trial: each worker process's and the servers' CPU seconds (Linux /proc, Redis
// INFO), and the CPU per fine-tune a throughput target has to fit into.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Db } from '@tuneline/db';
import type { Supervisor } from '@tuneline/devstack';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { TrialReport } from './report.ts';

/** CPU seconds (user + system) a process has used so far, from /proc; throws where there is none. */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime is 14th, stime 15th overall.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ on Linux
}

/** CPU seconds used so far by each running worker process, keyed by pid (Linux only; else empty). */
export function workerCpuSeconds(supervisor: Supervisor): Map<number, { service: string; seconds: number }> {
  const out = new Map<number, { service: string; seconds: number }>();
  for (const p of supervisor.processes) {
    if (!p.child.pid) continue;
    try {
      out.set(p.child.pid, { service: p.service, seconds: procCpuSeconds(p.child.pid) });
    } catch {
      // Not Linux, or the process is gone.
    }
  }
  return out;
}

export function cpuSince(
  before: Map<number, { service: string; seconds: number }>,
  after: Map<number, { service: string; seconds: number }>,
): Record<string, number> {
  const perService: Record<string, number> = {};
  for (const [pid, { service, seconds }] of after) {
    perService[service] = (perService[service] ?? 0) + seconds - (before.get(pid)?.seconds ?? 0);
  }
  return perService;
}

/**
 * The run's CPU per fine-tune, and the rate that much CPU allows on this machine's cores if nothing
 * else ran: what a throughput target has to fit into.
 */
export function cpuPerFineTune(report: TrialReport): string[] {
  const fineTunes = report.fineTunesPerSecond * (report.wallMs / 1000);
  if (!fineTunes || Object.keys(report.cpuSeconds).length === 0) return [];
  const msOf = (seconds: number) => (seconds / fineTunes) * 1000;
  const totalMs = msOf(Object.values(report.cpuSeconds).reduce((a, b) => a + b, 0));
  const outside = Object.entries(report.cpuSeconds).filter(([k]) => OUTSIDE_THE_WORKERS.has(k));
  const outsideMs = msOf(outside.reduce((sum, [, v]) => sum + v, 0));
  const cores = availableParallelism();
  return [
    `CPU per fine-tune             ${totalMs.toFixed(0)} ms in all (${Object.entries(report.cpuSeconds)
      .map(([k, v]) => `${k} ${msOf(v).toFixed(1)}`)
      .join(' · ')}); ${cores} cores fit at most ${((cores * 1000) / totalMs).toFixed(1)} fine-tunes/s`,
    // What a throughput target leaves the workers once the rest of the machine's work is paid for.
    `  of which the workers         ${(totalMs - outsideMs).toFixed(0)} ms; outside them ${outsideMs.toFixed(0)} ms (${outside
      .map(([k]) => k)
      .join(', ')})`,
  ];
}

/** The cpuSeconds entries that are not worker processes. */
export const RIG_CPU = 'simulator + SMTP + harness';
const POSTGRES_CPU = 'postgres';
const REDIS_CPU = 'redis (whole server)';
const OUTSIDE_THE_WORKERS = new Set([RIG_CPU, POSTGRES_CPU, REDIS_CPU]);

/**
 * CPU seconds used so far by the servers: this database's backends (from /proc, so only when Postgres
 * runs on this machine; a backend that exits takes its share with it) and the whole Redis server (its
 * INFO, so every client of that Redis counts). Left out when they cannot be read.
 */
export async function serverCpuSeconds(db: Db, redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const { rows } = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database()`.execute(db);
    let seconds = 0;
    for (const { pid } of rows) seconds += procCpuSeconds(pid);
    if (Number.isFinite(seconds)) out[POSTGRES_CPU] = seconds;
  } catch {
    // Postgres elsewhere (or not Linux): its CPU is not ours to read.
  }
  try {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
    const seconds = field('used_cpu_user') + field('used_cpu_sys');
    if (Number.isFinite(seconds)) out[REDIS_CPU] = seconds;
  } catch {
    // INFO refused (a managed Redis may disable it).
  }
  return out;
}
