import { decideMigration, type EvaluationSummary, type MigrationEvaluation } from '@tuneline/evaluation';
import type { Executor } from '../connection.ts';
import { getEvaluationRunByFineTune } from '../repositories/evaluations.ts';
import { type FineTuneRecord, getFineTune } from '../repositories/fine-tunes.ts';
import {
  aliasNamesOf,
  findMigration,
  findMigrationByFineTune,
  lockMigration,
  type MovedAlias,
  recordMigrationEnd,
} from '../repositories/migrations.ts';
import { queueOutcomeNotifications } from '../repositories/notifications.ts';
import { promoteFineTune } from '../repositories/promotions.ts';
import { autoTrainFineTuneId } from './ids.ts';
import { deployForPromotion } from './promote-deploy.ts';

/**
 * One-call migration (issue 21.4) in the fine-tune lifecycle: a migration ends where its new
 * fine-tune's outcome becomes known, in the same transaction as the outcome e-mails (`queueOutcome`):
 * after its evaluation, after a settlement without one, or at a failure. So the decision, the alias
 * moves and the e-mail that explains them commit together, once.
 */

/** The migration a fine-tune trains (its dataset's auto-train fine-tune), if any. */
export async function migrationOfFineTune(db: Executor, fineTuneId: string) {
  const migration = await findMigrationByFineTune(db, fineTuneId);
  return migration && fineTuneId === autoTrainFineTuneId(migration.datasetId) ? migration : undefined;
}

/** The new model's evaluation as the rule reads it (undefined while it is still running). */
async function evaluationOf(tx: Executor, fineTuneId: string): Promise<MigrationEvaluation | undefined> {
  const run = await getEvaluationRunByFineTune(tx, fineTuneId);
  if (!run) return { status: 'none', reason: 'no evaluation ran: the dataset has no testing file' };
  if (run.status === 'succeeded') return { status: 'succeeded', summary: run.summary as EvaluationSummary };
  if (run.status === 'failed') return { status: 'failed', reason: run.reason ?? 'it failed' };
  return undefined;
}

/**
 * Ends the migration of this fine-tune, once (the row locked while `running`): failed when the new
 * fine-tune did not succeed; otherwise the rule (`decideMigration`) on its evaluation against the old
 * model. To promote, the new model is activated and each alias serving the old model is pointed at it
 * (`promoteFineTune`, who `migration:<id>`, only if the alias still serves the old model). A model its
 * provider serves only once deployed (Azure: the migration carries the hourly fee) gets its deployment
 * started instead (`deploying`), and its aliases move when it serves (`migrationDeploymentServes`). The
 * old model stays as it is (active, aliases' history intact), so a rollback can go back to it.
 */
export async function decideMigrationOf(tx: Executor, fineTuneId: string): Promise<void> {
  const migration = await migrationOfFineTune(tx, fineTuneId);
  if (migration?.status !== 'running') return;
  const fineTune = await getFineTune(tx, fineTuneId);
  if (!fineTune || !(await lockMigration(tx, migration.id, 'running'))) return;
  const end = { id: migration.id, from: 'running' as const, toFineTuneId: fineTune.id, aliases: [] };
  if (fineTune.status !== 'succeeded' || !fineTune.fineTunedModel) {
    const why = fineTune.errorMessage ? `: ${fineTune.errorMessage}` : '';
    await recordMigrationEnd(tx, {
      ...end,
      status: 'failed',
      decision: null,
      reason: `the new fine-tune ended ${fineTune.status}${why}; the old model and its aliases are unchanged`,
    });
    return;
  }
  const evaluation = await evaluationOf(tx, fineTune.id);
  if (!evaluation) return; // decided when the evaluation ends
  const decision = decideMigration(migration.promote, evaluation);
  if (decision.action !== 'promote') {
    await recordMigrationEnd(tx, { ...end, status: 'succeeded', decision: 'kept', reason: decision.reason });
    return;
  }
  const fee = migration.hostingCreditsPerHour;
  const hosting =
    fee !== null && fineTune.provider ? { provider: fineTune.provider, creditsPerHour: fee } : null;
  const deployment = await deployForPromotion(tx, fineTune, hosting);
  if (deployment.state !== 'serving') {
    const deploying = deployment.state === 'deploying';
    await recordMigrationEnd(tx, {
      ...end,
      status: deploying ? 'deploying' : 'succeeded',
      decision: deploying ? 'promoted' : 'kept',
      reason: deploying
        ? `${decision.reason}; ${deployment.note}: the aliases move when it serves`
        : `not promoted: the new model could not be deployed (${deployment.why})`,
    });
    return;
  }
  await recordPromotion(tx, fineTune, migration, { ...end, reason: decision.reason });
}

/** Moves the aliases to the new model and records the end (`kept` when it is not available after all). */
async function recordPromotion(
  tx: Executor,
  fineTune: FineTuneRecord,
  migration: { id: string; fromFineTuneId: string },
  end: { id: string; from: 'running' | 'deploying'; toFineTuneId: string; reason: string },
): Promise<void> {
  const moved = await promoteOverOld(tx, fineTune, migration);
  await recordMigrationEnd(tx, {
    ...end,
    status: 'succeeded',
    decision: moved.available ? 'promoted' : 'kept',
    reason: moved.available ? `${end.reason}${moved.note}` : 'not promoted: the new model is not available',
    aliases: moved.aliases,
  });
}

/** The `deploying` migration of this fine-tune, its row locked (undefined: none). */
async function deployingMigration(tx: Executor, fineTuneId: string) {
  const migration = await migrationOfFineTune(tx, fineTuneId);
  if (migration?.status !== 'deploying') return undefined;
  return (await lockMigration(tx, migration.id, 'deploying')) ? migration : undefined;
}

/** A promoted migration's new model serves (its deployment is active): its aliases move now. */
export async function migrationDeploymentServes(tx: Executor, fineTune: FineTuneRecord): Promise<void> {
  const migration = await deployingMigration(tx, fineTune.id);
  if (!migration) return;
  const reason = (await findMigration(tx, fineTune.licenseId, migration.id))?.reason ?? 'promoted';
  await recordPromotion(tx, fineTune, migration, {
    id: migration.id,
    from: 'deploying',
    toFineTuneId: fineTune.id,
    reason: reason.replace(/: the aliases move when it serves$/, ': it serves'),
  });
}

/** A promoted migration's deployment ended before serving: the aliases stay on the old model. */
export async function migrationDeploymentEnded(tx: Executor, fineTuneId: string, why: string): Promise<void> {
  const migration = await deployingMigration(tx, fineTuneId);
  if (!migration) return;
  await recordMigrationEnd(tx, {
    id: migration.id,
    from: 'deploying',
    status: 'succeeded',
    toFineTuneId: fineTuneId,
    decision: 'kept',
    reason: `not promoted: the new model's deployment ended before it served (${why}); the aliases stay on the old model`,
    aliases: [],
  });
}

/** Activates the new model and points every alias that serves the old one at it. */
async function promoteOverOld(
  tx: Executor,
  fineTune: FineTuneRecord,
  migration: { id: string; fromFineTuneId: string },
): Promise<{ available: boolean; aliases: MovedAlias[]; note: string }> {
  const actor = `migration:${migration.id}`;
  const names = await aliasNamesOf(tx, fineTune.licenseId, migration.fromFineTuneId);
  const aliases: MovedAlias[] = [];
  const elsewhere: string[] = [];
  for (const alias of names.length ? names : [null]) {
    const result = await promoteFineTune(tx, {
      licenseId: fineTune.licenseId,
      fineTuneId: fineTune.id,
      alias,
      actor,
      ...(alias ? { expectedFineTuneId: migration.fromFineTuneId } : {}),
    });
    if (result.outcome === 'not_available') return { available: false, aliases: [], note: '' };
    if (result.outcome === 'moved' && alias) elsewhere.push(alias);
    else if (result.outcome === 'promoted' && alias && result.alias?.outcome === 'switched')
      aliases.push({ name: alias, fromFineTuneId: migration.fromFineTuneId, toFineTuneId: fineTune.id });
  }
  const note = !names.length
    ? '; no alias served the old model: the new model is active, call it by name or point an alias at it'
    : elsewhere.length
      ? `; left where they were (switched meanwhile): ${elsewhere.join(', ')}`
      : '';
  return { available: true, aliases, note };
}

/**
 * What follows a fine-tune's known outcome, in the caller's transaction: its migration's end (if it
 * trains one) and its outcome notifications. Every place a fine-tune's outcome becomes final calls it.
 */
export async function queueOutcome(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'status' | 'notifyEmails' | 'correlationId'>,
): Promise<number> {
  await decideMigrationOf(tx, fineTune.id);
  return queueOutcomeNotifications(tx, fineTune);
}
