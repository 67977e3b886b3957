import {
  type Clock,
  LIFECYCLE_SWEEP_SCHEDULER_ID,
  lifecycleSweepSchedulerPayload,
  processClock,
  utcDay,
} from '@tuneline/contracts';
import { type Catalogue, defaultCatalogue, lifecycleOf, type TrainingProvider } from '@tuneline/dataset';
import {
  claimLifecycleWarnings,
  type Executor,
  type LifecycleEvent,
  type LifecycleWarningRecord,
  markLifecycleWarningFailed,
  markLifecycleWarningSent,
  recordLifecycleWarnings,
} from '@tuneline/db';
import { type Closable, defineStage, type Logger, startJobScheduler } from '@tuneline/runtime';
import type { NotifierDeps } from './handler.ts';
import { isPermanentSmtpRejection, type Mailer, type OutgoingMail } from './mailer.ts';
import { HeaderInjectionError, validRecipient } from './message.ts';

/**
 * The lifecycle sweep (issue 21.3), in the notifier because sending e-mail is what it does (its mailer,
 * SMTP settings and at-least-once handling): warn each affected license 30, 7 and 1 days before a base
 * model's `trainingClosesAt` and `shutdownAt` at each provider (21.2: OpenAI's dates concern the
 * fine-tunes at OpenAI, Azure's those at Azure). Dates are judged by the one clock (21.5). Each warning
 * is a row keyed (license, base model, provider, event, threshold) in Postgres, so it goes out once whatever the
 * number of replicas, sweeps or restarts; only the nearest threshold crossed is recorded, so a sweep
 * that starts 5 days before sends the 7-day warning, not the 30-day one too.
 */

export const THRESHOLDS_DAYS = [30, 7, 1] as const;
const DAY_MS = 86_400_000;

export interface LifecycleSweepDeps {
  db: Executor;
  catalogue: Catalogue;
  clock: Clock;
  mailer: Mailer;
  mailFrom: string;
  log: Logger;
}

export interface SweepResult {
  recorded: number;
  sent: number;
  failed: number;
}

/** The nearest threshold `now` has crossed before `date`, or undefined (too early, or the day passed). */
export function dueThreshold(date: string, now: Date): number | undefined {
  const left = (Date.parse(`${date}T00:00:00Z`) - now.getTime()) / DAY_MS;
  if (left <= 0) return undefined;
  let due: number | undefined;
  for (const t of THRESHOLDS_DAYS) if (left <= t) due = t;
  return due;
}

const EVENT_TEXT: Record<LifecycleEvent, string> = {
  training_closes: 'takes no new fine-tuning jobs',
  shutdown: 'shuts down with every fine-tune built on it',
};

export function lifecycleEmail(w: LifecycleWarningRecord, catalogue: Catalogue, from: string): OutgoingMail {
  const dates = lifecycleOf(catalogue[w.baseModel], w.provider);
  const to = w.recipients.map(validRecipient).join(', ');
  const lines = [
    `Base model ${w.baseModel} at ${w.provider} ${EVENT_TEXT[w.event]} on ${w.eventDate} (in ${w.thresholdDays} day(s) or less).`,
    '',
    w.models.length ? `Your models on it: ${w.models.join(', ')}` : 'You have fine-tunes on it.',
    `Suggested successor: ${dates.successor ?? 'none named in the catalogue'}`,
    dates.source ? `Source: ${dates.source}` : '',
    '',
    w.event === 'shutdown'
      ? 'From that day on, calls to these models (and to aliases pointing at them) answer 410.'
      : 'From that day on, requests and fine-tunes on this base model are refused.',
  ];
  return {
    from,
    to,
    subject: `Tuneline: ${w.baseModel} at ${w.provider} ${EVENT_TEXT[w.event]} on ${w.eventDate}`,
    text: lines.filter((l, i) => l !== '' || i > 0).join('\n'),
    messageId: `<lifecycle-${w.id}@tuneline>`,
    headers: { 'X-Tuneline-Lifecycle': `${w.event}; ${w.baseModel}; ${w.provider}; ${w.thresholdDays}d` },
  };
}

/** One sweep: record the warnings now due, then send every pending one. */
export async function runLifecycleSweep(deps: LifecycleSweepDeps): Promise<SweepResult> {
  const now = deps.clock.now();
  let recorded = 0;
  for (const model of Object.values(deps.catalogue)) {
    for (const provider of Object.keys(model.providers ?? {}) as TrainingProvider[]) {
      const dates = lifecycleOf(model, provider);
      const events: [LifecycleEvent, string | null][] = [
        ['training_closes', dates.trainingClosesAt],
        ['shutdown', dates.shutdownAt],
      ];
      for (const [event, date] of events) {
        if (!date) continue;
        const thresholdDays = dueThreshold(date, now);
        if (thresholdDays === undefined) continue;
        recorded += await recordLifecycleWarnings(deps.db, {
          baseModel: model.name,
          provider,
          ownProvider: model.provider,
          event,
          eventDate: date,
          thresholdDays,
        });
      }
    }
  }
  let sent = 0;
  let failed = 0;
  for (;;) {
    const batch = await claimLifecycleWarnings(deps.db, 50);
    if (batch.length === 0) break;
    for (const w of batch) {
      if (w.recipients.length === 0) {
        await markLifecycleWarningFailed(
          deps.db,
          w.id,
          'no notify e-mail on any fine-tune of this license',
          true,
        );
        failed++;
        continue;
      }
      try {
        await deps.mailer.send(lifecycleEmail(w, deps.catalogue, deps.mailFrom));
      } catch (err) {
        const permanent = err instanceof HeaderInjectionError || isPermanentSmtpRejection(err);
        await markLifecycleWarningFailed(deps.db, w.id, (err as Error).message, permanent);
        deps.log.warn({ warningId: w.id, err: String(err), permanent }, 'lifecycle warning not sent');
        failed++;
        if (!permanent) return { recorded, sent, failed }; // the mail server is down: next sweep
        continue;
      }
      await markLifecycleWarningSent(deps.db, w.id);
      sent++;
    }
  }
  if (recorded || sent || failed)
    deps.log.info({ recorded, sent, failed, day: utcDay(now) }, 'lifecycle sweep');
  return { recorded, sent, failed };
}

/** Stage of the notifier: consumes `lifecycle-sweep` (queued by the job scheduler below). */
export const lifecycleSweepStage = defineStage<'lifecycle-sweep', NotifierDeps>({
  queue: 'lifecycle-sweep',
  async handle(_message, ctx, deps) {
    const result = await runLifecycleSweep({
      db: deps.db,
      catalogue: deps.catalogue ?? defaultCatalogue,
      clock: deps.clock ?? processClock(),
      mailer: deps.mailer,
      mailFrom: deps.mailFrom,
      log: ctx.log,
    });
    ctx.log.info({ ...result }, 'lifecycle sweep');
  },
});

/**
 * The job scheduler that queues a sweep every `everyMs`, on the notifier (it sends e-mail; the warnings
 * are e-mails), on every replica (one scheduler results). A sweep run twice sends nothing twice (the
 * Postgres key), so a duplicated or late job is harmless.
 */
export function startLifecycleSweepScheduler(
  opts: Omit<Parameters<typeof startJobScheduler>[0], 'queue' | 'schedulerId' | 'payload'>,
): Promise<Closable> {
  return startJobScheduler({
    ...opts,
    queue: 'lifecycle-sweep',
    schedulerId: LIFECYCLE_SWEEP_SCHEDULER_ID,
    payload: lifecycleSweepSchedulerPayload(),
  });
}
