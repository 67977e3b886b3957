import type { Executor } from '@tuneline/db';
import { sql } from 'kysely';

export interface Violation {
  invariant: string;
  detail: string;
}

/**
 * Each check is one query returning a row per violation, with a `detail` text. They read committed
 * data only, so the auditor can run at any time next to live workers (a fine-tune between its
 * terminal status and its settlement is not yet held to the settlement invariants).
 */
const checks: { invariant: string; query: ReturnType<typeof sql<{ detail: string }>> }[] = [
  {
    invariant: 'postings sum to zero',
    query: sql`
      SELECT format('debits_posted - credits_posted = %s, debits_pending - credits_pending = %s',
        sum(debits_posted) - sum(credits_posted), sum(debits_pending) - sum(credits_pending)) AS detail
      FROM ledger_accounts
      HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)`,
  },
  {
    invariant: 'cached balances equal the sum of their entries',
    query: sql`
      WITH t AS (
        SELECT x.*, kind IN ('grant', 'post', 'overage', 'usage', 'evaluation', 'hosting') AS posted,
          kind IN ('reserve', 'hold', 'evaluation_hold')
            AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = x.id) AS open
        FROM ledger_transfers x
      ), legs AS (
        SELECT debit_account_id AS account, CASE WHEN posted THEN amount ELSE 0 END AS dp, 0 AS cp,
          CASE WHEN open THEN amount ELSE 0 END AS dpe, 0 AS cpe FROM t
        UNION ALL
        SELECT credit_account_id, 0, CASE WHEN posted THEN amount ELSE 0 END, 0,
          CASE WHEN open THEN amount ELSE 0 END FROM t
      ), sums AS (
        SELECT account, sum(dp) AS dp, sum(cp) AS cp, sum(dpe) AS dpe, sum(cpe) AS cpe FROM legs GROUP BY account
      )
      SELECT format('account %s: cached debits_posted %s credits_posted %s debits_pending %s credits_pending %s; entries give %s %s %s %s',
        a.id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
        coalesce(s.dp, 0), coalesce(s.cp, 0), coalesce(s.dpe, 0), coalesce(s.cpe, 0)) AS detail
      FROM ledger_accounts a LEFT JOIN sums s ON s.account = a.id
      WHERE (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
        IS DISTINCT FROM (coalesce(s.dp, 0), coalesce(s.cp, 0), coalesce(s.dpe, 0), coalesce(s.cpe, 0))`,
  },
  {
    invariant: 'transfer ids are deterministic',
    query: sql`
      SELECT format('transfer %s (%s, fine-tune %s) does not follow the id scheme', id, kind, fine_tune_id) AS detail
      FROM ledger_transfers
      WHERE (kind = 'grant' AND id NOT LIKE 'grant-%')
         OR (kind IN ('reserve', 'post', 'void', 'overage', 'evaluation_hold')
             AND (fine_tune_id IS NULL OR id <> kind || '-' || fine_tune_id::text))
         OR (kind = 'hold' AND id !~ '^hold-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
         OR (kind IN ('usage', 'release') AND pending_id IS NOT NULL AND id <> kind || '-' || substr(pending_id, 6))
         OR (kind = 'evaluation' AND (fine_tune_id IS NULL
             OR (id <> 'evaluation-' || fine_tune_id::text AND id NOT LIKE 'evaluation-' || fine_tune_id::text || '-%')))
         OR (kind = 'hosting'
             AND (fine_tune_id IS NULL OR id !~ '^hosting-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(0|[1-9][0-9]*)$'))`,
  },
  {
    // Hosting (issue 20.1): hour h of a deployment is charged once (its id), at the deployment's fee, to
    // its license, only if the deployment served and hour h had started before it ended; the hours a
    // deployment says it charged are exactly its transfers.
    invariant: 'a hosting charge is one started hour of its deployment, at its fee',
    query: sql`
      WITH h AS (
        SELECT t.id, t.amount, t.license_id, t.fine_tune_id, t.debit_account_id,
          substr(t.id, 9, 36)::uuid AS deployment_id, substr(t.id, 46)::int AS hour
        FROM ledger_transfers t
        WHERE t.kind = 'hosting'
          AND t.id ~ '^hosting-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9]{1,9}$'
      )
      SELECT format('hosting charge %s: %s', h.id, CASE
        WHEN d.id IS NULL THEN 'no such deployment'
        WHEN d.active_at IS NULL THEN 'the deployment never served'
        WHEN h.amount <> d.credits_per_hour THEN format('charged %s, the fee is %s', h.amount, d.credits_per_hour)
        WHEN (h.license_id, h.fine_tune_id) IS DISTINCT FROM (d.license_id, d.fine_tune_id)
          OR h.debit_account_id <> 'license-' || d.license_id THEN 'another license or fine-tune'
        WHEN h.hour >= d.hours_billed THEN format('hour %s beyond the %s the deployment counts', h.hour, d.hours_billed)
        ELSE format('hour %s had not started when the deployment ended at %s', h.hour, d.ended_at) END) AS detail
      FROM h LEFT JOIN model_deployments d ON d.id = h.deployment_id
      WHERE d.id IS NULL OR d.active_at IS NULL OR h.amount <> d.credits_per_hour
        OR (h.license_id, h.fine_tune_id) IS DISTINCT FROM (d.license_id, d.fine_tune_id)
        OR h.debit_account_id <> 'license-' || d.license_id
        OR h.hour >= d.hours_billed
        OR (d.ended_at IS NOT NULL AND d.active_at + h.hour * interval '1 hour' >= d.ended_at)
      UNION ALL
      SELECT format('deployment %s counts %s charged hour(s), the ledger holds %s', d.id, d.hours_billed, count(h.id))
      FROM model_deployments d LEFT JOIN h ON h.deployment_id = d.id
      GROUP BY d.id, d.hours_billed
      HAVING count(h.id) <> d.hours_billed`,
  },
  {
    // Since migration 0060 a run is charged once when it ends (`evaluation-<fineTuneId>`, the sum of its
    // answers); runs charged per answer before (`evaluation-<fineTuneId>-<role>-<position>`) still hold
    // each answer to its own charge.
    invariant: 'an evaluation is charged once, for the credits of its answers',
    query: sql`
      SELECT format('evaluation charge %s: %s', t.id, CASE WHEN a.transfer_id IS NULL THEN 'no answer row'
        ELSE format('charged %s, the answer says %s', t.amount, a.credits) END) AS detail
      FROM ledger_transfers t LEFT JOIN evaluation_answers a ON a.transfer_id = t.id
      WHERE t.kind = 'evaluation' AND t.id <> 'evaluation-' || t.fine_tune_id::text
        AND (a.transfer_id IS NULL OR a.credits <> t.amount)
      UNION ALL
      SELECT format('answer %s has no evaluation charge', a.transfer_id)
      FROM evaluation_answers a
      WHERE a.transfer_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.id = a.transfer_id AND t.kind = 'evaluation')
      UNION ALL
      SELECT format('evaluation of fine-tune %s (%s): charged %s, its %s answers say %s', r.fine_tune_id,
        r.status, coalesce(t.amount::text, 'nothing'), s.n, s.credits)
      FROM evaluation_runs r
      CROSS JOIN LATERAL (SELECT coalesce(sum(a.credits), 0) AS credits, count(*) AS n
        FROM evaluation_answers a WHERE a.run_id = r.id AND a.transfer_id IS NULL) s
      LEFT JOIN ledger_transfers t ON t.id = 'evaluation-' || r.fine_tune_id::text
      WHERE (t.id IS NOT NULL AND t.amount <> s.credits)
         OR (t.id IS NULL AND r.status IN ('succeeded', 'failed') AND s.n > 0)
      UNION ALL
      SELECT format('evaluation charge %s has no evaluation run', t.id)
      FROM ledger_transfers t
      WHERE t.kind = 'evaluation' AND t.id = 'evaluation-' || t.fine_tune_id::text
        AND NOT EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.fine_tune_id = t.fine_tune_id)`,
  },
  {
    // Settlement carries the reservation's unused part into the hold in the statement that posts it; the
    // evaluation's end resolves it (charged, the rest released). No credits are lost or held forever.
    invariant: 'an evaluation hold keeps the unused reservation until its evaluation ends',
    query: sql`
      SELECT format('evaluation hold %s: %s', h.id, CASE
        WHEN p.id IS NULL OR r.id IS NULL THEN 'no post of the reservation beside it'
        WHEN h.amount <> r.amount - p.amount THEN format('holds %s, the reservation %s minus its post %s',
          h.amount, r.amount, p.amount)
        WHEN (h.debit_account_id, h.credit_account_id) <> (r.debit_account_id, r.credit_account_id)
          THEN 'other accounts than the reservation'
        ELSE format('still pending, its evaluation %s', coalesce(e.status, 'does not exist')) END) AS detail
      FROM ledger_transfers h
      LEFT JOIN ledger_transfers r ON r.id = 'reserve-' || h.fine_tune_id::text
      LEFT JOIN ledger_transfers p ON p.id = 'post-' || h.fine_tune_id::text
      LEFT JOIN evaluation_runs e ON e.fine_tune_id = h.fine_tune_id
      WHERE h.kind = 'evaluation_hold' AND (
        p.id IS NULL OR r.id IS NULL OR h.amount <> r.amount - p.amount
        OR (h.debit_account_id, h.credit_account_id) <> (r.debit_account_id, r.credit_account_id)
        OR ((e.id IS NULL OR e.status IN ('succeeded', 'failed'))
            AND NOT EXISTS (SELECT 1 FROM ledger_transfers x WHERE x.pending_id = h.id)))`,
  },
  {
    // A post or void resolves a fine-tune's reservation; a usage or release resolves an inference hold;
    // an evaluation resolves the fine-tune's evaluation hold. A usage or evaluation may exceed its hold:
    // the charge is what the provider reported (see the overage check).
    invariant: 'a reservation resolves by a matching post or void',
    query: sql`
      WITH x AS (
        SELECT t.*, CASE WHEN t.kind IN ('post', 'void') THEN 'reserve'
          WHEN t.kind = 'evaluation' THEN 'evaluation_hold' ELSE 'hold' END AS resolves
        FROM ledger_transfers t WHERE t.pending_id IS NOT NULL
      )
      SELECT format('%s resolves %s: %s', x.id, x.pending_id, CASE
        WHEN r.id IS NULL OR r.kind <> x.resolves THEN format('not a %s', x.resolves)
        WHEN (x.debit_account_id, x.credit_account_id) <> (r.debit_account_id, r.credit_account_id) THEN 'other accounts'
        WHEN x.fine_tune_id IS DISTINCT FROM r.fine_tune_id THEN 'other fine-tune'
        WHEN x.kind IN ('void', 'release') THEN format('%s of %s, held %s', x.kind, x.amount, r.amount)
        ELSE format('post of %s exceeds the reserved %s', x.amount, r.amount) END) AS detail
      FROM x LEFT JOIN ledger_transfers r ON r.id = x.pending_id
      WHERE r.id IS NULL OR r.kind <> x.resolves
        OR (x.debit_account_id, x.credit_account_id) <> (r.debit_account_id, r.credit_account_id)
        OR x.fine_tune_id IS DISTINCT FROM r.fine_tune_id
        OR (x.kind IN ('void', 'release') AND x.amount <> r.amount) OR (x.kind = 'post' AND x.amount > r.amount)`,
  },
  {
    invariant: 'an overage follows a post of the whole reservation',
    query: sql`
      SELECT format('overage %s has no post of the full reservation beside it', o.id) AS detail
      FROM ledger_transfers o
      LEFT JOIN ledger_transfers p ON p.id = 'post-' || o.fine_tune_id::text
      LEFT JOIN ledger_transfers r ON r.id = 'reserve-' || o.fine_tune_id::text
      WHERE o.kind = 'overage' AND (p.id IS NULL OR r.id IS NULL OR p.amount <> r.amount OR o.amount = 0)`,
  },
  {
    invariant: 'every reservation of a finished fine-tune is resolved exactly once',
    query: sql`
      SELECT format('fine-tune %s (%s, settled %s): reservation %s is still pending', f.id, f.status, f.settled_at, r.id) AS detail
      FROM fine_tunes f JOIN ledger_transfers r ON r.id = 'reserve-' || f.id::text
      WHERE f.settled_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM ledger_transfers x WHERE x.pending_id = r.id)`,
  },
  {
    invariant: 'a settled fine-tune is charged ceil(trained_tokens × price / 1e6), once',
    query: sql`
      WITH charges AS (
        SELECT f.id, f.status, f.trained_tokens, f.credits_charged, r.id AS reservation,
          -- Failed or cancelled after some training: those tokens are charged against the reservation.
          CASE WHEN f.status = 'succeeded'
              OR (f.status IN ('failed', 'cancelled') AND r.id IS NOT NULL AND coalesce(f.trained_tokens, 0) > 0)
            THEN ceil(coalesce(f.trained_tokens, 0)::numeric * f.credits_per_million_tokens / 1000000)
            ELSE 0 END AS expected,
          (SELECT count(*) FROM ledger_transfers p WHERE p.id = 'post-' || f.id::text) AS posts,
          (SELECT coalesce(sum(amount), 0) FROM ledger_transfers c
            WHERE c.fine_tune_id = f.id AND c.kind IN ('post', 'overage')) AS charged
        FROM fine_tunes f LEFT JOIN ledger_transfers r ON r.id = 'reserve-' || f.id::text
        WHERE f.settled_at IS NOT NULL
      )
      SELECT format('fine-tune %s (%s, %s trained tokens): expected charge %s, ledger charged %s in %s post(s), row says %s',
        id, status, trained_tokens, expected, charged, posts, credits_charged) AS detail
      FROM charges
      WHERE (status = 'succeeded' AND trained_tokens IS NULL)
         OR charged <> expected
         OR coalesce(credits_charged, 0) <> charged
         OR (status = 'succeeded' AND posts <> 1)`,
  },
  {
    // Exactly once: one usage transfer per metered call (inference_usage row, id = call id), same amount.
    invariant: 'a metered inference call is charged once, as its usage row says',
    query: sql`
      SELECT format('inference call %s: usage row %s credits, ledger usage %s', coalesce(u.id::text, substr(t.id, 7)),
        coalesce(u.credits::text, 'missing'), coalesce(t.amount::text, 'missing')) AS detail
      FROM inference_usage u
      FULL JOIN (SELECT id, amount FROM ledger_transfers WHERE kind = 'usage') t ON t.id = 'usage-' || u.id::text
      WHERE u.id IS NULL OR t.id IS NULL OR u.credits <> t.amount`,
  },
  {
    invariant: 'only a settled succeeded fine-tune is available',
    query: sql`
      SELECT format('fine-tune %s is available but %s (settled %s)', id, status, settled_at) AS detail
      FROM fine_tunes WHERE available AND (status <> 'succeeded' OR settled_at IS NULL)`,
  },
  {
    invariant: 'an uncovered overage blocks the license',
    query: sql`
      SELECT format('account %s: available %s, overage_blocked %s', id,
        credits_posted - debits_posted - debits_pending, overage_blocked) AS detail
      FROM ledger_accounts
      WHERE (kind = 'license' AND credits_posted - debits_posted - debits_pending < 0 AND NOT overage_blocked)
         OR (overage_blocked AND kind <> 'license')`,
  },
  {
    invariant: 'ledger rows are never updated or deleted',
    query: sql`
      SELECT format('trigger %s on ledger_transfers is missing or disabled', t.name) AS detail
      FROM (VALUES ('ledger_transfers_no_update'), ('ledger_transfers_no_truncate')) AS t(name)
      WHERE NOT EXISTS (
        SELECT 1 FROM pg_trigger g
        WHERE g.tgrelid = 'ledger_transfers'::regclass AND g.tgname = t.name AND g.tgenabled <> 'D')`,
  },
];

export async function auditLedger(db: Executor): Promise<{ violations: Violation[] }> {
  const violations: Violation[] = [];
  for (const check of checks) {
    const result = await check.query.execute(db);
    for (const row of result.rows) violations.push({ invariant: check.invariant, detail: row.detail });
  }
  return { violations };
}

export const AUDITED_INVARIANTS = checks.map((c) => c.invariant);
