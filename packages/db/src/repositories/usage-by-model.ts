import { sql } from 'kysely';
import type { Executor } from '../connection.ts';

/** One model's inference on one day (UTC): calls, tokens and credits metered. */
export interface ModelUsageDay {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  model: string;
  fineTuneId: string;
  calls: number;
  promptTokens: bigint;
  completionTokens: bigint;
  credits: bigint;
}

/**
 * A license's metered inference (`inference_usage`, one row per call) per UTC day and model, from
 * `since` on, oldest day first. The model is the fine-tune's provider model name.
 */
export async function inferenceUsageByDay(
  db: Executor,
  licenseId: string,
  since: Date,
): Promise<ModelUsageDay[]> {
  const day = sql<string>`to_char(date_trunc('day', u.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`;
  const rows = await db
    .selectFrom('inference_usage as u')
    .innerJoin('fine_tunes as f', 'f.id', 'u.fine_tune_id')
    .select([
      day.as('day'),
      'u.fine_tune_id',
      sql<string>`coalesce(f.fine_tuned_model, f.id::text)`.as('model'),
      sql<string>`count(*)`.as('calls'),
      sql<string>`sum(u.prompt_tokens)`.as('prompt_tokens'),
      sql<string>`sum(u.completion_tokens)`.as('completion_tokens'),
      sql<string>`sum(u.credits)`.as('credits'),
    ])
    .where('u.license_id', '=', licenseId)
    .where('u.created_at', '>=', since)
    .groupBy([day, 'u.fine_tune_id', 'f.fine_tuned_model', 'f.id'])
    .orderBy('day')
    .orderBy('model')
    .execute();
  return rows.map((r) => ({
    day: r.day,
    model: r.model,
    fineTuneId: r.fine_tune_id,
    calls: Number(r.calls),
    promptTokens: BigInt(r.prompt_tokens),
    completionTokens: BigInt(r.completion_tokens),
    credits: BigInt(r.credits),
  }));
}
