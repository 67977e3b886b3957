// A trial's report: what it counted at the edges (provider jobs in the simulator, per dialect; charges in
// the ledger; e-mails at the SMTP server; correlation ids in the logs), the same per provider, stage
// latencies and per-queue figures, which checks failed, and the lines `npm run chaos` prints.
import { type FineTuneRequestInput, SERVICES } from '@tuneline/contracts';
import type { Db } from '@tuneline/db';
import { auditLedger } from '@tuneline/ledger';
import type { RunningSimulator } from '@tuneline/simulator';
import { sql } from 'kysely';
import { cpuPerFineTune } from './cpu.ts';
import type { LogCollector } from './logs.ts';
import { countProviderJobs, dialectOfPath, type JobDialects, providerOf } from './providers.ts';
import type { SmtpTestServer } from './smtp.ts';

export interface TrialEvent {
  atMs: number;
  what: string;
}

export interface TrialReport {
  requests: number;
  /** Requests with a settled fine-tune, its evaluation (if any) ended and every notification sent or failed for good. */
  terminal: number;
  /** Request ids that were not terminal when the trial stopped. */
  notTerminal: string[];
  fineTunes: Record<string, number>;
  /** Fine-tunes whose provider job count (in any dialect) is not exactly 1 (a value of 0 or 2+). */
  providerJobsNotOne: { fineTuneId: string; provider: string; jobs: number }[];
  /** Fine-tunes whose one provider job was created or followed in another provider's dialect. */
  providerJobsInWrongDialect: { fineTuneId: string; provider: string; dialect: string }[];
  /** Provider jobs whose tag names no fine-tune of this trial. */
  orphanProviderJobs: number;
  /** Fine-tunes trained at another provider than the one their request was sent for. */
  misrouted: { requestId: string; planned: string; provider: string }[];
  /** Succeeded fine-tunes with a charge count other than 1, and other fine-tunes charged more than once. */
  chargesNotOne: { fineTuneId: string; provider: string; status: string; charges: number }[];
  emails: {
    expected: number;
    delivered: number;
    /** (fine-tune, recipient) pairs with no message received. */
    missing: number;
    /** Extra copies received over SMTP for a (fine-tune, recipient) pair. */
    duplicates: number;
  };
  auditViolations: number;
  /**
   * Requests whose correlationId appears in the logs of every service it went through: all seven, or
   * the six but the evaluator for a fine-tune without an evaluation.
   */
  correlatedAcrossStages: number;
  /** Evaluations that failed, with the reason the e-mail gives (they are not a failed check). */
  evaluationsFailed: { fineTuneId: string; provider: string; reason: string }[];
  /** Per provider (the trial's spread): requests, what became of them, jobs, charges, evaluations. */
  perProvider: Record<string, ProviderFigures>;
  /** Requests re-sent by the upstream because Postgres had not stored them (after the Redis flush). */
  resubmitted: number;
  /** The upstream's sends of those requests (it re-sends every 2 s until Postgres has the request). */
  resends: number;
  /** Provider faults the simulator injected, by kind. */
  faultsInjected: Record<string, number>;
  /** The same per dialect (openai, azure, together; duplicated webhooks apart as `webhooks`). */
  faultsByDialect: Record<string, Record<string, number>>;
  events: TrialEvent[];
  /** SIGTERMs: how long each process took to exit and its exit code. */
  terminations: { service: string; ms: number; code: number | null }[];
  /** Exits of worker processes other than the trial's own SIGKILLs and SIGTERMs (crashes). */
  unexpectedExits: number;
  /** From the first enqueue to the last request turning terminal. */
  wallMs: number;
  fineTunesPerSecond: number;
  /**
   * Per queue, from the workers' own /metrics at the end (processes restarted by the chaos count
   * only since their restart): jobs completed, retried and failed, rate-limit pauses, handler seconds.
   */
  stages: Record<
    string,
    { completed: number; retried: number; failed: number; rateLimited: number; handlerSeconds: number }
  >;
  /**
   * CPU seconds each service's processes used from the first enqueue to the end (Linux /proc; start-up
   * excluded; a process restarted meanwhile counts from its restart), and this process's own.
   */
  cpuSeconds: Record<string, number>;
  /** Per stage, milliseconds (p50, p95, p99, max), from the rows' timestamps. */
  stageLatency: Record<string, { p50: number; p95: number; p99: number; max: number }>;
}

export interface ProviderFigures {
  requests: number;
  terminal: number;
  /** Fine-tunes by status. */
  fineTunes: Record<string, number>;
  /** Provider jobs of this provider's fine-tunes, by the dialect that created and followed them. */
  providerJobs: Record<string, number>;
  jobsNotOne: number;
  /** Succeeded fine-tunes charged exactly once. */
  chargedOnce: number;
  chargesNotOne: number;
  /** Evaluation runs by status. */
  evaluations: Record<string, number>;
}

/**
 * The worker services in pipeline order, as the contracts' queue catalogue names its consumers (the
 * evaluator runs for fine-tunes with a testing file).
 */
export { SERVICES };

/** `azure 2 · together 1`: how a list of findings splits over the providers. */
const byProvider = (items: { provider: string }[]) =>
  Object.entries(tally(items.map((i) => i.provider)))
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');

function tally(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** The checks of a report that failed, as readable lines; empty when everything held. */
export function failedChecks(report: TrialReport): string[] {
  const failed: string[] = [];
  if (report.terminal !== report.requests)
    failed.push(
      `${report.requests - report.terminal} of ${report.requests} requests not terminal (${report.notTerminal.slice(0, 5).join(', ')}; ${Object.entries(
        report.perProvider,
      )
        .filter(([, v]) => v.terminal !== v.requests)
        .map(([k, v]) => `${k} ${v.requests - v.terminal}`)
        .join(' · ')})`,
    );
  if (report.misrouted.length)
    failed.push(`${report.misrouted.length} fine-tunes trained at another provider than their request's`);
  if (report.providerJobsNotOne.length)
    failed.push(
      `${report.providerJobsNotOne.length} fine-tunes without exactly one provider job (${byProvider(report.providerJobsNotOne)})`,
    );
  if (report.providerJobsInWrongDialect.length)
    failed.push(
      `${report.providerJobsInWrongDialect.length} provider jobs in another provider's dialect (${byProvider(report.providerJobsInWrongDialect)})`,
    );
  if (report.orphanProviderJobs) failed.push(`${report.orphanProviderJobs} provider jobs of no fine-tune`);
  if (report.chargesNotOne.length)
    failed.push(
      `${report.chargesNotOne.length} fine-tunes charged wrongly (${byProvider(report.chargesNotOne)})`,
    );
  if (report.emails.missing) failed.push(`${report.emails.missing} e-mails never delivered`);
  if (report.emails.duplicates) failed.push(`${report.emails.duplicates} duplicate e-mails delivered`);
  if (report.auditViolations) failed.push(`${report.auditViolations} ledger audit violations`);
  if (report.correlatedAcrossStages !== report.requests)
    failed.push(
      `${report.requests - report.correlatedAcrossStages} requests whose correlationId is missing from some stage's logs`,
    );
  if (report.unexpectedExits) failed.push(`${report.unexpectedExits} worker processes exited unexpectedly`);
  return failed;
}

/** `a 1 · b 2` */
const pairs = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');

/** The report as the lines `npm run chaos` prints. */
export function formatReport(report: TrialReport): string[] {
  const pct = (v: { p50: number; p95: number; p99: number; max: number }) =>
    `p50 ${v.p50} ms · p95 ${v.p95} ms · p99 ${v.p99} ms · max ${v.max} ms`;
  return [
    `requests terminal            ${report.terminal}/${report.requests}`,
    `fine-tunes                   ${pairs(report.fineTunes)}`,
    `provider jobs per fine-tune  ${report.providerJobsNotOne.length === 0 ? 'exactly 1 for every fine-tune' : `${report.providerJobsNotOne.length} not 1`}; in another provider's dialect ${report.providerJobsInWrongDialect.length}; orphans ${report.orphanProviderJobs}; misrouted ${report.misrouted.length}`,
    `charges per succeeded        ${report.chargesNotOne.length === 0 ? 'exactly 1 for every one' : `${report.chargesNotOne.length} wrong`}`,
    'per provider',
    ...Object.entries(report.perProvider).map(
      ([provider, v]) =>
        `  ${provider.padEnd(10)}${v.terminal}/${v.requests} terminal · fine-tunes ${pairs(v.fineTunes)} · charged once ${v.chargedOnce} (wrong ${v.chargesNotOne}) · evaluations ${pairs(v.evaluations) || 'none'}\n` +
        `  ${''.padEnd(10)}provider jobs by dialect ${pairs(v.providerJobs) || 'none'} (fine-tunes without exactly 1: ${v.jobsNotOne}) · faults ${pairs(report.faultsByDialect[provider] ?? {}) || 'none'}`,
    ),
    ...report.evaluationsFailed
      .slice(0, 3)
      .map((e) => `  evaluation failed (${e.provider}): ${e.reason.slice(0, 160)}`),
    `e-mails                      ${report.emails.delivered} delivered of ${report.emails.expected} expected · missing ${report.emails.missing} · duplicates ${report.emails.duplicates}`,
    `ledger audit                 ${report.auditViolations} violations`,
    `correlationId in all stages  ${report.correlatedAcrossStages}/${report.requests} requests`,
    `faults injected              ${pairs(report.faultsInjected) || 'none'}`,
    `chaos                        ${report.events.length} events; ${report.resubmitted} requests re-sent by the upstream after the flush (${report.resends} sends)`,
    ...report.terminations.map((t) => `  SIGTERM ${t.service}: exit ${t.code} after ${t.ms} ms`),
    `unexpected worker exits      ${report.unexpectedExits}`,
    `throughput                   ${report.fineTunesPerSecond.toFixed(2)} fine-tunes/s (${(report.wallMs / 1000).toFixed(1)} s wall)`,
    ...Object.entries(report.stageLatency).map(([stage, v]) => `  ${stage.padEnd(45)}${pct(v)}`),
    `CPU seconds during the run    ${Object.entries(report.cpuSeconds)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(' · ')}`,
    ...cpuPerFineTune(report),
    'jobs per queue (from /metrics)',
    ...Object.entries(report.stages).map(
      ([queue, v]) =>
        `  ${queue.padEnd(40)}completed ${v.completed} · retried ${v.retried} · failed ${v.failed} · rate-limited ${v.rateLimited} · handler ${
          v.completed ? ((v.handlerSeconds / (v.completed + v.retried + v.failed)) * 1000).toFixed(1) : '—'
        } ms/job`,
    ),
  ];
}

export interface PipelineState {
  stored: number;
  datasets: number;
  fineTunes: number;
  finished: number;
  settled: number;
  evaluations: number;
  evaluationsDone: number;
  mailsTotal: number;
  mailsDone: number;
  /**
   * Request ids that are terminal: their fine-tune is settled, its evaluation (if it has one) ended
   * (the outcome e-mails wait for it), and none of its notifications is still pending (sent, or failed
   * for good). The one definition both the progress lines and the report use.
   */
  terminalRequests: string[];
}

export async function pipelineState(db: Db, licenses: string[]): Promise<PipelineState> {
  const row = await sql<PipelineState>`
    with reqs as (select id, request_id from fine_tune_requests where license_id in (${sql.join(licenses)})),
    ds as (select d.id, r.request_id from datasets d join reqs r on r.id = d.request_row_id),
    ft as (select f.*, ds.request_id from fine_tunes f join ds on ds.id = f.dataset_id),
    n as (select n.* from notifications n join ft on ft.id = n.fine_tune_id),
    e as (select e.* from evaluation_runs e join ft on ft.id = e.fine_tune_id)
    select
      (select count(*) from reqs)::int as stored,
      (select count(*) from datasets d join reqs r on r.id = d.request_row_id
        where d.status in ('ready', 'uploading', 'uploaded'))::int as datasets,
      (select count(*) from ft)::int as "fineTunes",
      (select count(*) from ft where finished_at is not null)::int as finished,
      (select count(*) from ft where settled_at is not null)::int as settled,
      (select count(*) from e)::int as evaluations,
      (select count(*) from e where status in ('succeeded', 'failed'))::int as "evaluationsDone",
      (select count(*) from n)::int as "mailsTotal",
      (select count(*) from n where status in ('sent', 'failed'))::int as "mailsDone",
      array(select distinct ft.request_id from ft where settled_at is not null
        and not exists (select 1 from e where e.fine_tune_id = ft.id and e.status in ('pending', 'running'))
        and not exists (select 1 from n where n.fine_tune_id = ft.id and n.status = 'pending')) as "terminalRequests"
  `.execute(db);
  return row.rows[0] as PipelineState;
}

/** Sums the job counters and handler time of every worker's /metrics, per queue. */
export async function scrapeStageMetrics(ports: number[]): Promise<TrialReport['stages']> {
  const stages: TrialReport['stages'] = {};
  const stage = (queue: string) => {
    stages[queue] ??= { completed: 0, retried: 0, failed: 0, rateLimited: 0, handlerSeconds: 0 };
    return stages[queue];
  };
  for (const port of ports) {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    for (const line of text.split('\n')) {
      const sample = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
      if (!sample?.[1] || sample[2] === undefined) continue;
      const labels = Object.fromEntries([...sample[2].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const value = Number(sample[3]);
      if (!labels.queue) continue;
      if (sample[1] === 'tuneline_jobs_total') {
        const s = stage(labels.queue);
        if (labels.outcome === 'completed') s.completed += value;
        else if (labels.outcome === 'retried') s.retried += value;
        else if (labels.outcome === 'failed') s.failed += value;
        else if (labels.outcome === 'rate_limited') s.rateLimited += value;
      } else if (sample[1] === 'tuneline_job_duration_seconds_sum') {
        stage(labels.queue).handlerSeconds += value;
      }
    }
  }
  return stages;
}

export async function collectReport(input: {
  db: Db;
  licenses: string[];
  inputs: FineTuneRequestInput[];
  sim: RunningSimulator;
  smtp: SmtpTestServer;
  output: LogCollector;
  events: TrialEvent[];
  wallMs: number;
  resubmitted: number;
  resends: number;
  terminations: TrialReport['terminations'];
  /** Worker exits seen before the trial stopped the workers. */
  exits: number;
  sigkills: number;
  stages: TrialReport['stages'];
  cpuSeconds: Record<string, number>;
  /** The provider each request was sent for (the trial's spread). */
  planned: Map<string, string>;
  /** The dialect of each job in the simulator's OpenAI store. */
  dialects: JobDialects;
}): Promise<TrialReport> {
  const { db, licenses } = input;
  const fineTunes = await db
    .selectFrom('fine_tunes')
    .innerJoin('datasets', 'datasets.id', 'fine_tunes.dataset_id')
    .innerJoin('fine_tune_requests', 'fine_tune_requests.id', 'datasets.request_row_id')
    .leftJoin('evaluation_runs', 'evaluation_runs.fine_tune_id', 'fine_tunes.id')
    .select([
      'fine_tunes.id',
      'fine_tunes.status',
      'fine_tunes.notify_emails',
      'fine_tunes.provider',
      'fine_tune_requests.request_id as requestId',
      'evaluation_runs.status as evaluation',
      'evaluation_runs.reason as evaluationReason',
    ])
    .where('fine_tunes.license_id', 'in', licenses)
    .execute()
    .then((rows) => rows.map((r) => ({ ...r, provider: providerOf(r) })));
  const terminalRequests = new Set((await pipelineState(db, licenses)).terminalRequests);

  // Provider jobs per fine-tune, from the simulator's own records, each in the dialect of its provider.
  const jobs = countProviderJobs(input.sim, input.dialects, new Set(fineTunes.map((f) => f.id)));
  const trained = fineTunes.filter((f) => f.status !== 'insufficient_credits');
  const providerJobsNotOne = trained
    .map((f) => ({ fineTuneId: f.id, provider: f.provider, jobs: jobs.perFineTune.get(f.id)?.length ?? 0 }))
    .filter((x) => x.jobs !== 1);
  const providerJobsInWrongDialect = trained.flatMap((f) =>
    (jobs.perFineTune.get(f.id) ?? [])
      .filter((j) => j.dialect !== f.provider)
      .map((j) => ({ fineTuneId: f.id, provider: f.provider, dialect: j.dialect })),
  );
  const misrouted = fineTunes
    .map((f) => ({
      requestId: f.requestId,
      planned: input.planned.get(f.requestId) ?? '?',
      provider: f.provider,
    }))
    .filter((x) => x.planned !== x.provider);

  // Charges: the ledger's post transfers per fine-tune.
  const posts = new Map<string, number>();
  for (const row of await db
    .selectFrom('ledger_transfers')
    .select(['fine_tune_id'])
    .where('kind', '=', 'post')
    .where('license_id', 'in', licenses)
    .execute()) {
    if (row.fine_tune_id) posts.set(row.fine_tune_id, (posts.get(row.fine_tune_id) ?? 0) + 1);
  }
  const charges = fineTunes.map((f) => ({
    fineTuneId: f.id,
    provider: f.provider,
    status: f.status,
    charges: posts.get(f.id) ?? 0,
  }));
  const chargesNotOne = charges.filter((x) => (x.status === 'succeeded' ? x.charges !== 1 : x.charges > 1));

  // E-mails: what the SMTP server received, per (fine-tune, recipient).
  const received = new Map<string, number>();
  for (const mail of input.smtp.received) {
    const messageId = mail.headers['message-id'] ?? '';
    const fineTuneId = /<ft-([0-9a-f-]{36})-/.exec(messageId)?.[1] ?? 'unknown';
    for (const to of mail.to) {
      const key = `${fineTuneId} ${to.toLowerCase()}`;
      received.set(key, (received.get(key) ?? 0) + 1);
    }
  }
  let expected = 0;
  let missing = 0;
  for (const f of fineTunes) {
    for (const to of f.notify_emails) {
      expected++;
      if (!received.get(`${f.id} ${to.toLowerCase()}`)) missing++;
    }
  }
  let duplicates = 0;
  for (const n of received.values()) if (n > 1) duplicates += n - 1;

  // Every service a request went through logged its correlationId: the evaluator only where it ran.
  const evaluated = new Set(fineTunes.filter((f) => f.evaluation !== null).map((f) => f.requestId));
  const correlatedAcrossStages = input.inputs.filter((i) => {
    const seen = input.output.services.get(`corr-${i.requestId}`);
    const through = SERVICES.filter((s) => s !== 'evaluator' || evaluated.has(i.requestId));
    return seen !== undefined && through.every((s) => seen.has(s));
  }).length;

  const faultsInjected: Record<string, number> = {};
  const faultsByDialect: Record<string, Record<string, number>> = {};
  for (const f of input.sim.admin.state().faultLog) {
    if (f.fault === 'none') continue;
    faultsInjected[f.fault] = (faultsInjected[f.fault] ?? 0) + 1;
    const dialect = dialectOfPath(f.method, f.path);
    const counts = faultsByDialect[dialect] ?? {};
    counts[f.fault] = (counts[f.fault] ?? 0) + 1;
    faultsByDialect[dialect] = counts;
  }

  const perProvider: Record<string, ProviderFigures> = {};
  for (const provider of new Set([...input.planned.values()])) {
    const own = fineTunes.filter((f) => f.provider === provider);
    const requestIds = [...input.planned].filter(([, p]) => p === provider).map(([id]) => id);
    perProvider[provider] = {
      requests: requestIds.length,
      terminal: requestIds.filter((id) => terminalRequests.has(id)).length,
      fineTunes: tally(own.map((f) => f.status)),
      providerJobs: tally(own.flatMap((f) => (jobs.perFineTune.get(f.id) ?? []).map((j) => j.dialect))),
      jobsNotOne: providerJobsNotOne.filter((x) => x.provider === provider).length,
      chargedOnce: charges.filter(
        (x) => x.provider === provider && x.status === 'succeeded' && x.charges === 1,
      ).length,
      chargesNotOne: chargesNotOne.filter((x) => x.provider === provider).length,
      evaluations: tally(own.flatMap((f) => (f.evaluation ? [f.evaluation] : []))),
    };
  }

  // Every exit the trial did not cause itself is a crash.
  const caused = input.sigkills + input.terminations.length;
  const unexpectedExits = Math.max(0, input.exits - caused);

  const stageLatency = await stageLatencies(db, licenses);
  return {
    requests: input.inputs.length,
    terminal: terminalRequests.size,
    notTerminal: input.inputs.map((i) => i.requestId).filter((id) => !terminalRequests.has(id)),
    fineTunes: tally(fineTunes.map((f) => f.status)),
    providerJobsNotOne,
    providerJobsInWrongDialect,
    orphanProviderJobs: Object.values(jobs.orphans).reduce((a, b) => a + b, 0),
    misrouted,
    chargesNotOne,
    emails: { expected, delivered: input.smtp.received.length, missing, duplicates },
    auditViolations: (await auditLedger(db)).violations.length,
    correlatedAcrossStages,
    evaluationsFailed: fineTunes
      .filter((f) => f.evaluation === 'failed')
      .map((f) => ({ fineTuneId: f.id, provider: f.provider, reason: f.evaluationReason ?? '' })),
    perProvider,
    resubmitted: input.resubmitted,
    resends: input.resends,
    faultsInjected,
    faultsByDialect,
    events: input.events,
    terminations: input.terminations,
    unexpectedExits,
    wallMs: input.wallMs,
    fineTunesPerSecond: terminalRequests.size / (input.wallMs / 1000),
    stageLatency,
    stages: input.stages,
    cpuSeconds: input.cpuSeconds,
  };
}

/** Stage latencies from the rows' own timestamps (the database clock, so no skew between processes). */
async function stageLatencies(db: Db, licenses: string[]): Promise<TrialReport['stageLatency']> {
  const result = await sql<{ stage: string; p50: number; p95: number; p99: number; max: number }>`
    with t as (
      select r.created_at as received, d.created_at as dataset_created, d.updated_at as dataset_updated,
             f.created_at as ft_created, f.settled_at,
             (select e.finished_at from evaluation_runs e where e.fine_tune_id = f.id) as evaluated,
             (select max(n.sent_at) from notifications n where n.fine_tune_id = f.id) as mailed
      from fine_tune_requests r
      join datasets d on d.request_row_id = r.id
      join fine_tunes f on f.dataset_id = d.id
      where r.license_id in (${sql.join(licenses)})
    ),
    spans as (
      select 'build (received → dataset)' as stage, extract(epoch from dataset_created - received) * 1000 as ms from t
      union all select 'upload + create (dataset → job)', extract(epoch from ft_created - dataset_created) * 1000 from t
      union all select 'train, follow, settle (job → charged)', extract(epoch from settled_at - ft_created) * 1000 from t
      union all select 'evaluate (charged → evaluated)', extract(epoch from evaluated - settled_at) * 1000 from t
      union all select 'notify (charged or evaluated → last e-mail)', extract(epoch from mailed - coalesce(evaluated, settled_at)) * 1000 from t
      union all select 'end to end (received → last e-mail)', extract(epoch from mailed - received) * 1000 from t
    )
    select stage,
           round(percentile_cont(0.5) within group (order by ms))::int as p50,
           round(percentile_cont(0.95) within group (order by ms))::int as p95,
           round(percentile_cont(0.99) within group (order by ms))::int as p99,
           round(max(ms))::int as max
    from spans where ms is not null group by stage
  `.execute(db);
  const order = [
    'build (received → dataset)',
    'upload + create (dataset → job)',
    'train, follow, settle (job → charged)',
    'evaluate (charged → evaluated)',
    'notify (charged or evaluated → last e-mail)',
    'end to end (received → last e-mail)',
  ];
  const out: TrialReport['stageLatency'] = {};
  for (const stage of order) {
    const row = result.rows.find((r) => r.stage === stage);
    if (row) out[stage] = { p50: row.p50, p95: row.p95, p99: row.p99, max: row.max };
  }
  return out;
}
