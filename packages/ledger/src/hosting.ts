import { type Executor, inTransaction } from '@tuneline/db';
import { sql } from 'kysely';
import { ensureLicenseAccount, licenseAccountId, postChargesLegs, revenueAccountId } from './accounts.ts';

/**
 * Hosting fees of deployed fine-tunes (issue 20.1): Azure bills every hour a fine-tuned deployment
 * exists, used or not. Tuneline charges the license the catalogue's fee (fixed on the deployment at
 * activation) per started hour from the moment the deployment serves (`active_at`) until it ended
 * (`ended_at`), as posted transfers of their own kind, `hosting`, license → revenue, one per
 * (deployment, hour): `hosting-<deploymentId>-<hour>` with hours numbered from 0.
 */

/** The deterministic id of a deployment's charge for hour `hour` (0 = the first started hour). */
export function hostingTransferId(deploymentId: string, hour: number): string {
  return `hosting-${deploymentId}-${hour}`;
}

export interface HostingCharge {
  /** Hours charged by this call. */
  charged: number;
  credits: bigint;
  /** Started hours charged in all, after this call. */
  hoursBilled: number;
}

/**
 * Charges the started hours of a deployment not charged yet, as of `now` (the one clock): hours
 * `hours_billed` … ceil((min(ended_at, now) - active_at) / 1 h) - 1, each its own transfer, and the
 * accounts by their sum, in ONE statement that locks the deployment row. Run twice, or by two sweeps
 * at once, it charges each hour once: the second finds the hours counted (after the lock) and the
 * transfer ids taken. A deployment that ended is closed once every hour up to its end is charged, and
 * the sweep leaves it alone. A charge the balance cannot cover blocks the license (as an overage does).
 */
export async function chargeHostingHours(
  db: Executor,
  deployment: { id: string; licenseId: string },
  now: Date,
): Promise<HostingCharge> {
  const account = licenseAccountId(deployment.licenseId);
  const revenue = revenueAccountId(deployment.id);
  const at = now.toISOString();
  return inTransaction(db, async (tx) => {
    await ensureLicenseAccount(tx, deployment.licenseId);
    return chargeStatement(tx, deployment, { account, revenue, at });
  });
}

async function chargeStatement(
  db: Executor,
  deployment: { id: string; licenseId: string },
  { account, revenue, at }: { account: string; revenue: string; at: string },
): Promise<HostingCharge> {
  const result = await sql<{ charged: number; credits: string; hours_billed: number | null }>`
    WITH d AS (
      SELECT id, name, license_id, fine_tune_id, model, credits_per_hour, hours_billed, ended_at,
        greatest(0, ceil(extract(epoch FROM (least(coalesce(ended_at, ${at}::timestamptz), ${at}::timestamptz)
          - active_at)) / 3600))::int AS hours
      FROM model_deployments
      WHERE id = ${deployment.id}::uuid AND license_id = ${deployment.licenseId}
        AND active_at IS NOT NULL AND NOT hosting_closed
      FOR UPDATE
    ), transfer AS (
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
        fine_tune_id, model, memo)
      SELECT 'hosting-' || d.id::text || '-' || h, 'hosting', ${account}, ${revenue}, d.credits_per_hour,
        d.license_id, d.fine_tune_id, d.model, format('hosting: hour %s of deployment %s', h + 1, d.name)
      FROM d, generate_series(d.hours_billed, d.hours - 1) AS h
      ORDER BY h
      ON CONFLICT (id) DO NOTHING
      RETURNING amount
    ), total AS (
      SELECT coalesce(sum(amount), 0) AS amount, count(*) AS n FROM transfer
    ), ${postChargesLegs(account, revenue)}, marked AS (
      UPDATE model_deployments m
      SET hours_billed = greatest(m.hours_billed, d.hours),
          hosting_closed = d.ended_at IS NOT NULL AND d.ended_at <= ${at}::timestamptz,
          updated_at = now()
      FROM d WHERE m.id = d.id
      RETURNING m.hours_billed
    )
    SELECT (SELECT n FROM total)::int AS charged, (SELECT amount FROM total)::text AS credits,
      (SELECT hours_billed FROM marked) AS hours_billed,
      (SELECT count(*) FROM debited)::int AS debited, (SELECT count(*) FROM credited)::int AS credited`.execute(
    db,
  );
  const row = result.rows[0] as
    | { charged: number; credits: string; hours_billed: number | null; debited: number; credited: number }
    | undefined;
  if (!row) return { charged: 0, credits: 0n, hoursBilled: 0 };
  if (row.charged > 0 && (row.debited !== 1 || row.credited !== 1)) {
    throw new Error(
      `hosting of deployment ${deployment.id}: charged ${row.charged} hour(s) but moved ${row.debited} license and ${row.credited} revenue account(s) (does the license account exist?)`,
    );
  }
  return { charged: row.charged, credits: BigInt(row.credits), hoursBilled: row.hours_billed ?? 0 };
}
