import { type Selectable, sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { LifecycleWarningsTable } from '../schema.ts';

/**
 * Lifecycle warnings (issue 21.3): which license was warned about which base model's event at which
 * provider and threshold. The unique key (license, base model, provider, event, threshold) makes each
 * warning once; the sweep claims rows before e-mailing and marks them sent after.
 */

export type LifecycleEvent = 'training_closes' | 'shutdown';

export interface LifecycleWarningRecord {
  id: string;
  licenseId: string;
  baseModel: string;
  /** The provider whose dates these are (issue 21.2: dates are per base model and provider). */
  provider: string;
  event: LifecycleEvent;
  eventDate: string;
  thresholdDays: number;
  recipients: string[];
  /** The license's fine-tuned models on that base model when the warning was recorded. */
  models: string[];
  status: 'pending' | 'sending' | 'sent' | 'failed';
  attempts: number;
  sentAt: Date | null;
}

const toRecord = (r: Selectable<LifecycleWarningsTable>): LifecycleWarningRecord => ({
  id: r.id,
  licenseId: r.license_id,
  baseModel: r.base_model,
  provider: r.provider,
  event: r.event,
  eventDate: r.event_date,
  thresholdDays: r.threshold_days,
  recipients: r.recipients,
  models: r.models,
  status: r.status,
  attempts: r.attempts,
  sentAt: r.sent_at,
});

/**
 * Records the warning `thresholdDays` before `event` of `baseModel` at `provider` for every affected
 * license — with a fine-tune on that base model at that provider (for a shutdown: a trained one) —
 * unless already recorded. A fine-tune without a provider (the deployment default) counts as the
 * model's own provider's (`ownProvider`). Recipients are the notify e-mails of those fine-tunes.
 * Returns the rows this call added.
 */
export async function recordLifecycleWarnings(
  db: Executor,
  input: {
    baseModel: string;
    provider: string;
    ownProvider: string;
    event: LifecycleEvent;
    eventDate: string;
    thresholdDays: number;
  },
): Promise<number> {
  const trainedOnly = input.event === 'shutdown';
  const result = await sql<{ id: string }>`
    INSERT INTO lifecycle_warnings
           (license_id, base_model, provider, event, event_date, threshold_days, recipients, models)
    SELECT f.license_id, ${input.baseModel}, ${input.provider}, ${input.event}, ${input.eventDate},
           ${input.thresholdDays},
           COALESCE(array_agg(DISTINCT e.address) FILTER (WHERE e.address IS NOT NULL), '{}'),
           COALESCE(array_agg(DISTINCT f.fine_tuned_model) FILTER (WHERE f.fine_tuned_model IS NOT NULL), '{}')
      FROM fine_tunes f
      LEFT JOIN LATERAL unnest(f.notify_emails) AS e(address) ON true
     WHERE f.base_model = ${input.baseModel}
       AND COALESCE(f.provider, ${input.ownProvider}) = ${input.provider}
       AND (${!trainedOnly} OR f.fine_tuned_model IS NOT NULL)
     GROUP BY f.license_id
    ON CONFLICT (license_id, base_model, provider, event, threshold_days) DO NOTHING
    RETURNING id
  `.execute(db);
  return result.rows.length;
}

/** Claims up to `limit` warnings to send: pending ones, and claims older than `staleMs` (a crash). */
export async function claimLifecycleWarnings(
  db: Executor,
  limit = 100,
  staleMs = 10 * 60_000,
): Promise<LifecycleWarningRecord[]> {
  const rows = await db
    .updateTable('lifecycle_warnings')
    .set({ status: 'sending', claimed_at: sql`now()`, attempts: sql`attempts + 1` })
    .where(
      'id',
      'in',
      db
        .selectFrom('lifecycle_warnings')
        .select('id')
        .where((eb) =>
          eb.or([
            eb('status', '=', 'pending'),
            eb.and([
              eb('status', '=', 'sending'),
              eb('claimed_at', '<', sql<Date>`now() - make_interval(secs => ${staleMs / 1000})`),
            ]),
          ]),
        )
        .orderBy('created_at')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .execute();
  return rows.map(toRecord);
}

export async function markLifecycleWarningSent(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('lifecycle_warnings')
    .set({ status: 'sent', sent_at: sql`now()`, error: null })
    .where('id', '=', id)
    .execute();
}

/** A failed send: back to pending for the next sweep, or `failed` for good (a permanent rejection). */
export async function markLifecycleWarningFailed(
  db: Executor,
  id: string,
  error: string,
  permanent: boolean,
): Promise<void> {
  await db
    .updateTable('lifecycle_warnings')
    .set({ status: permanent ? 'failed' : 'pending', claimed_at: null, error })
    .where('id', '=', id)
    .execute();
}

/** A license's lifecycle warnings, newest first (the API and tests). */
export async function listLifecycleWarnings(
  db: Executor,
  licenseId: string,
): Promise<LifecycleWarningRecord[]> {
  const rows = await db
    .selectFrom('lifecycle_warnings')
    .selectAll()
    .where('license_id', '=', licenseId)
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map(toRecord);
}

/** A license's fine-tunes on one base model at one provider (what the hub's lifecycle notices are about). */
export interface LicenseBaseModel {
  baseModel: string;
  /** The fine-tunes' provider (null: the deployment default). */
  provider: string | null;
  /** Their trained models (empty when none finished training). */
  models: string[];
}

/** The base models and providers the license has fine-tunes on (discarded ones aside). */
export async function listLicenseBaseModels(db: Executor, licenseId: string): Promise<LicenseBaseModel[]> {
  const rows = await db
    .selectFrom('fine_tunes')
    .select([
      'base_model',
      'provider',
      sql<string[]>`COALESCE(array_agg(DISTINCT fine_tuned_model ORDER BY fine_tuned_model)
        FILTER (WHERE fine_tuned_model IS NOT NULL), '{}')`.as('models'),
    ])
    .where('license_id', '=', licenseId)
    .where('discarded_at', 'is', null)
    .groupBy(['base_model', 'provider'])
    .orderBy('base_model')
    .execute();
  return rows.map((r) => ({ baseModel: r.base_model, provider: r.provider, models: r.models }));
}
