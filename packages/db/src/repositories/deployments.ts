import { modelDeploymentMessage } from '@tuneline/contracts';
import { sql } from 'kysely';
import { type Executor, inSnapshot } from '../connection.ts';
import type { DeploymentState, ModelDeploymentRow } from '../schema.ts';
import { type FineTuneRecord, getFineTune, lockFineTune, toFineTuneRecord } from './fine-tunes.ts';
import { queueNotifications } from './notifications.ts';
import { inTransaction, writeOutbox } from './outbox.ts';

/**
 * Deployments of fine-tuned models at their provider (issue 20.1, migration 0050). The API starts one
 * (`startDeployment`) and asks for its deletion (`requestUndeploy`); the poller follows it, one link of
 * a chain at a time, to `active` or `failed` and deletes it, and its sweep ends the ones the provider
 * deleted. Every move carries its expected state in the WHERE clause, so a link or sweep that runs
 * twice changes the row once.
 */

export interface DeploymentRecord {
  id: string;
  fineTuneId: string;
  licenseId: string;
  provider: string;
  name: string;
  model: string;
  correlationId: string;
  state: DeploymentState;
  reason: string | null;
  creditsPerHour: bigint;
  followSteps: number;
  hoursBilled: number;
  hostingClosed: boolean;
  createdAt: Date;
  activeAt: Date | null;
  endedAt: Date | null;
  updatedAt: Date;
}

/** The notification kind of a deployment that ended without being asked to (Azure's idle deletion). */
export const DEPLOYMENT_ENDED = 'deployment_ended';

function toDeploymentRecord(row: ModelDeploymentRow): DeploymentRecord {
  return {
    id: row.id,
    fineTuneId: row.fine_tune_id,
    licenseId: row.license_id,
    provider: row.provider,
    name: row.name,
    model: row.model,
    correlationId: row.correlation_id,
    state: row.state,
    reason: row.reason,
    creditsPerHour: BigInt(row.credits_per_hour),
    followSteps: row.follow_steps,
    hoursBilled: row.hours_billed,
    hostingClosed: row.hosting_closed,
    createdAt: row.created_at,
    activeAt: row.active_at,
    endedAt: row.ended_at,
    updatedAt: row.updated_at,
  };
}

const record = (row: ModelDeploymentRow | undefined) => (row ? toDeploymentRecord(row) : undefined);

/** The first link of a deployment's chain (or a recovery's re-add of its current one). */
export function deploymentFollowMessage(d: DeploymentRecord, delayMs?: number) {
  return modelDeploymentMessage({
    deploymentId: d.id,
    fineTuneId: d.fineTuneId,
    correlationId: d.correlationId,
    step: d.followSteps,
    ...(delayMs !== undefined ? { delayMs } : {}),
  });
}

export async function getDeployment(db: Executor, id: string): Promise<DeploymentRecord | undefined> {
  return record(await db.selectFrom('model_deployments').selectAll().where('id', '=', id).executeTakeFirst());
}

/** The fine-tune's deployment that has not ended (at most one), locked when `forUpdate`. */
export async function findLiveDeployment(
  db: Executor,
  fineTuneId: string,
  forUpdate = false,
): Promise<DeploymentRecord | undefined> {
  let query = db
    .selectFrom('model_deployments')
    .selectAll()
    .where('fine_tune_id', '=', fineTuneId)
    .where('ended_at', 'is', null);
  if (forUpdate) query = query.forUpdate();
  return record(await query.executeTakeFirst());
}

/** Each fine-tune's latest deployment (live, or the last that ended), for the views: one statement. */
export async function latestDeployments(
  db: Executor,
  fineTuneIds: readonly string[],
): Promise<Map<string, DeploymentRecord>> {
  if (fineTuneIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('model_deployments')
    .selectAll()
    .distinctOn('fine_tune_id')
    .where('fine_tune_id', 'in', [...fineTuneIds])
    .orderBy('fine_tune_id')
    .orderBy('created_at', 'desc')
    .execute();
  return new Map(rows.map((r) => [r.fine_tune_id, toDeploymentRecord(r)]));
}

/**
 * A fine-tune with its latest deployment, both read from one snapshot (a REPEATABLE READ transaction,
 * or the caller's). `endDeployment` ends a deployment and clears the model's `active` in one transaction;
 * two separate reads could straddle that commit and show the model `active` next to a `deleted`
 * deployment.
 */
export async function getFineTuneWithDeployment(
  db: Executor,
  id: string,
): Promise<{ fineTune: FineTuneRecord; deployment: DeploymentRecord | undefined } | undefined> {
  const read = async (tx: Executor) => {
    const fineTune = await getFineTune(tx, id);
    if (!fineTune) return undefined;
    return { fineTune, deployment: (await latestDeployments(tx, [id])).get(id) };
  };
  return inSnapshot(db, read);
}

export type StartDeployment =
  /** A new deployment, its first link queued. */
  | { outcome: 'started'; deployment: DeploymentRecord; fineTune: FineTuneRecord }
  /** One is already deploying or active: the same one (activating twice creates one deployment). */
  | { outcome: 'existing'; deployment: DeploymentRecord; fineTune: FineTuneRecord }
  /** Its deletion is under way: activate again once it is deleted. */
  | { outcome: 'deleting'; deployment: DeploymentRecord; fineTune: FineTuneRecord }
  /** Not the license's, not available (not trained, not settled, discarded) or without a model. */
  | { outcome: 'unavailable'; fineTune: FineTuneRecord | undefined };

/**
 * Starts the deployment of a license's available fine-tune, in one transaction with the row locked:
 * the deployment row (`deploying`, its fee fixed) and the first link of its chain in the outbox.
 * The model stays inactive until the poller finds the deployment serving.
 */
export async function startDeployment(
  db: Executor,
  input: {
    fineTuneId: string;
    licenseId: string;
    provider: string;
    name: string;
    creditsPerHour: bigint;
    now: Date;
  },
): Promise<StartDeployment> {
  return inTransaction(db, async (tx) => {
    const fineTune = await lockFineTune(tx, input.fineTuneId);
    if (
      !fineTune ||
      fineTune.licenseId !== input.licenseId ||
      !fineTune.available ||
      fineTune.discardedAt !== null ||
      !fineTune.fineTunedModel
    )
      return { outcome: 'unavailable', fineTune };
    const live = await findLiveDeployment(tx, fineTune.id, true);
    if (live)
      return { outcome: live.state === 'deleting' ? 'deleting' : 'existing', deployment: live, fineTune };
    const row = await tx
      .insertInto('model_deployments')
      .values({
        fine_tune_id: fineTune.id,
        license_id: fineTune.licenseId,
        provider: input.provider,
        name: input.name,
        model: fineTune.fineTunedModel,
        correlation_id: fineTune.correlationId,
        credits_per_hour: input.creditsPerHour.toString(),
        created_at: input.now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const deployment = toDeploymentRecord(row);
    await writeOutbox(tx, deploymentFollowMessage(deployment));
    return { outcome: 'started', deployment, fineTune };
  });
}

/**
 * Deactivation of a deployed model: the model stops serving at once (`active` off) and its live
 * deployment, deploying or active, goes to `deleting` with the next link of its chain queued now (an
 * older link still waiting in Redis finds itself stale). Returns the fine-tune and the deployment.
 */
export async function requestUndeploy(
  db: Executor,
  input: { fineTuneId: string; licenseId: string; reason: string },
): Promise<{ fineTune: FineTuneRecord | undefined; deployment: DeploymentRecord | undefined }> {
  return inTransaction(db, async (tx) => {
    const fineTune = await lockFineTune(tx, input.fineTuneId);
    if (!fineTune || fineTune.licenseId !== input.licenseId)
      return { fineTune: undefined, deployment: undefined };
    const updated = await tx
      .updateTable('fine_tunes')
      .set({ active: false, updated_at: sql`now()` })
      .where('id', '=', fineTune.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const live = await findLiveDeployment(tx, fineTune.id, true);
    if (!live || live.state === 'deleting') return { fineTune: toFineTuneRecord(updated), deployment: live };
    const deleting = await tx
      .updateTable('model_deployments')
      .set({
        state: 'deleting',
        reason: input.reason,
        follow_steps: sql`follow_steps + 1`,
        updated_at: sql`now()`,
      })
      .where('id', '=', live.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const deployment = toDeploymentRecord(deleting);
    await writeOutbox(tx, deploymentFollowMessage(deployment));
    return { fineTune: toFineTuneRecord(updated), deployment };
  });
}

/**
 * Queues the next link of a deployment's chain `delayMs` from now, if `step` is still its current
 * link and it is still `state`; false when the row moved on (the link is stale).
 */
export async function continueDeploymentFollow(
  db: Executor,
  input: { id: string; step: number; state: DeploymentState; delayMs: number },
): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const row = await tx
      .updateTable('model_deployments')
      .set({ follow_steps: sql`follow_steps + 1`, updated_at: sql`now()` })
      .where('id', '=', input.id)
      .where('follow_steps', '=', input.step)
      .where('state', '=', input.state)
      .returningAll()
      .executeTakeFirst();
    if (!row) return false;
    await writeOutbox(tx, deploymentFollowMessage(toDeploymentRecord(row), input.delayMs));
    return true;
  });
}

/**
 * The provider serves the deployment: it becomes `active` (hosting hours count from `now`) and its
 * fine-tune active under the deployment's name, in one transaction. Undefined when it was not
 * `deploying` any more (deactivated meanwhile, or a repeated link).
 */
export async function markDeploymentActive(
  db: Executor,
  id: string,
  now: Date,
): Promise<{ deployment: DeploymentRecord; fineTune: FineTuneRecord | undefined } | undefined> {
  return inTransaction(db, async (tx) => {
    const row = await tx
      .updateTable('model_deployments')
      .set({ state: 'active', active_at: now, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('state', '=', 'deploying')
      .returningAll()
      .executeTakeFirst();
    if (!row) return undefined;
    const fineTune = await tx
      .updateTable('fine_tunes')
      .set({ active: true, deployment_name: row.name, updated_at: sql`now()` })
      .where('id', '=', row.fine_tune_id)
      .where('available', '=', true)
      .where('discarded_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    return {
      deployment: toDeploymentRecord(row),
      fineTune: fineTune ? toFineTuneRecord(fineTune) : undefined,
    };
  });
}

/**
 * Ends a deployment that is still in one of `from`: `deleted` (we deleted it, or the provider did) or
 * `failed`, with the reason and the time hosting stopped; its fine-tune is no longer active. With
 * `notify`, the fine-tune's recipients get one `deployment_ended` e-mail about it (queued in the same
 * transaction, once per deployment and recipient). Undefined when it had moved on already.
 */
export async function endDeployment(
  db: Executor,
  input: {
    id: string;
    from: readonly DeploymentState[];
    state: 'deleted' | 'failed';
    reason: string;
    now: Date;
    notify?: boolean;
  },
): Promise<DeploymentRecord | undefined> {
  return inTransaction(db, async (tx) => {
    const row = await tx
      .updateTable('model_deployments')
      .set((eb) => ({
        state: input.state,
        reason: eb.fn.coalesce('reason', eb.val(input.reason)),
        ended_at: input.now,
        updated_at: sql`now()`,
      }))
      .where('id', '=', input.id)
      .where('state', 'in', [...input.from])
      .returningAll()
      .executeTakeFirst();
    if (!row) return undefined;
    const fineTune = await tx
      .updateTable('fine_tunes')
      .set({ active: false, updated_at: sql`now()` })
      .where('id', '=', row.fine_tune_id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (input.notify)
      await queueNotifications(tx, toFineTuneRecord(fineTune), {
        kind: DEPLOYMENT_ENDED,
        deploymentId: row.id,
      });
    return toDeploymentRecord(row);
  });
}

/** Deployments the poller is creating or deleting (its recovery re-adds their current links). */
export async function listDeploymentsInFlight(db: Executor, limit = 10_000): Promise<DeploymentRecord[]> {
  const rows = await db
    .selectFrom('model_deployments')
    .selectAll()
    .where('ended_at', 'is', null)
    .where('state', 'in', ['deploying', 'deleting'])
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(toDeploymentRecord);
}

/** Active deployments of `provider` (the sweep checks each still exists). */
export async function listActiveDeployments(
  db: Executor,
  provider: string,
  limit = 10_000,
): Promise<DeploymentRecord[]> {
  const rows = await db
    .selectFrom('model_deployments')
    .selectAll()
    .where('ended_at', 'is', null)
    .where('state', '=', 'active')
    .where('provider', '=', provider)
    .orderBy('active_at')
    .limit(limit)
    .execute();
  return rows.map(toDeploymentRecord);
}

/** Deployments whose hosting hours may not all be charged yet (served once, not closed). */
export async function listHostingDue(db: Executor, limit = 10_000): Promise<DeploymentRecord[]> {
  const rows = await db
    .selectFrom('model_deployments')
    .selectAll()
    .where('active_at', 'is not', null)
    .where('hosting_closed', '=', false)
    .orderBy('active_at')
    .limit(limit)
    .execute();
  return rows.map(toDeploymentRecord);
}
