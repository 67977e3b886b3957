import { ALIAS_NAME } from '@tuneline/contracts';
import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { FineTuneRow } from '../schema.ts';
import { type FineTuneRecord, toFineTuneRecord } from './fine-tunes.ts';
import { inTransaction } from './outbox.ts';
import { firstRecord } from './records.ts';

/**
 * Model aliases (issue 21.1): a license's stable name for a use, pointing at one of its available and
 * active fine-tunes. A switch is one transaction (the alias row locked, updated, the history row
 * written), so a gateway call sees the old target or the new one, never anything in between.
 */

/** Alias names (the contracts' pattern): never a `:`, `.` or `/`, so never a provider's model name. */
export { ALIAS_NAME };

export interface AliasRecord {
  name: string;
  fineTuneId: string;
  /** The fine-tuned model the alias serves today. */
  model: string | null;
  baseModel: string;
  /** The provider that serves it (null: the deployment default): whose lifecycle dates apply. */
  provider: string | null;
  active: boolean;
  updatedAt: Date;
}

export interface AliasChange {
  action: 'point' | 'rollback';
  fromFineTuneId: string | null;
  toFineTuneId: string;
  actor: string;
  at: Date;
}

export type AliasSwitch =
  | { outcome: 'switched'; alias: AliasRecord; change: AliasChange }
  | { outcome: 'unchanged'; alias: AliasRecord }
  /** The target is not this license's, or not available and active. */
  | { outcome: 'target_unusable' }
  | { outcome: 'alias_not_found' }
  /** Rollback with nothing to go back to, or the previous target is no longer active. */
  | { outcome: 'no_previous'; reason: string }
  /** `firstTimeOnly`: the alias has pointed at this fine-tune before, so it is left where it is. */
  | { outcome: 'pointed_before' }
  /** `expectedFineTuneId`: the alias was pointed at another usable model meanwhile; left there. */
  | { outcome: 'moved'; currentFineTuneId: string };

async function usableTarget(
  tx: Executor,
  licenseId: string,
  fineTuneId: string,
): Promise<FineTuneRecord | undefined> {
  return firstRecord(
    tx
      .selectFrom('fine_tunes')
      .selectAll()
      .where('id', '=', fineTuneId)
      .where('license_id', '=', licenseId)
      .where('available', '=', true)
      .where('active', '=', true)
      .where('fine_tuned_model', 'is not', null)
      .forShare(),
    toFineTuneRecord,
  );
}

function aliasOf(name: string, target: FineTuneRecord, updatedAt: Date): AliasRecord {
  return {
    name,
    fineTuneId: target.id,
    model: target.fineTunedModel,
    baseModel: target.baseModel,
    provider: target.provider,
    active: target.active,
    updatedAt,
  };
}

async function record(
  tx: Executor,
  input: {
    licenseId: string;
    name: string;
    action: 'point' | 'rollback';
    from: string | null;
    to: string;
    actor: string;
  },
): Promise<AliasChange> {
  const row = await tx
    .insertInto('model_alias_history')
    .values({
      license_id: input.licenseId,
      name: input.name,
      action: input.action,
      from_fine_tune_id: input.from,
      to_fine_tune_id: input.to,
      actor: input.actor,
    })
    .returning('created_at')
    .executeTakeFirstOrThrow();
  return {
    action: input.action,
    fromFineTuneId: input.from,
    toFineTuneId: input.to,
    actor: input.actor,
    at: row.created_at,
  };
}

/** Locks the license's alias row `name` (undefined when there is none) until the transaction ends. */
function lockAlias(tx: Executor, licenseId: string, name: string) {
  return tx
    .selectFrom('model_aliases')
    .select(['fine_tune_id', 'updated_at'])
    .where('license_id', '=', licenseId)
    .where('name', '=', name)
    .forUpdate()
    .executeTakeFirst();
}

/** Moves the existing alias `name` from `from` to `target`, recording the change as `action`. */
async function switchAlias(
  tx: Executor,
  input: { licenseId: string; name: string; actor: string },
  action: AliasChange['action'],
  from: string,
  target: FineTuneRecord,
): Promise<AliasSwitch> {
  const updated = await tx
    .updateTable('model_aliases')
    .set({ fine_tune_id: target.id, updated_at: sql`now()` })
    .where('license_id', '=', input.licenseId)
    .where('name', '=', input.name)
    .returning('updated_at')
    .executeTakeFirstOrThrow();
  const change = await record(tx, { ...input, action, from, to: target.id });
  return { outcome: 'switched', alias: aliasOf(input.name, target, updated.updated_at), change };
}

/**
 * Locks the alias row (when there is one) and tells whether it serves another usable fine-tune than
 * `expectedFineTuneId` and `fineTuneId`: its id then, else undefined. A missing alias, or one left on a
 * model that is no longer usable (deactivated, discarded), is not a switch made elsewhere.
 */
export async function aliasSwitchedElsewhere(
  tx: Executor,
  input: { licenseId: string; name: string; fineTuneId: string; expectedFineTuneId: string | null },
): Promise<string | undefined> {
  const current = (await lockAlias(tx, input.licenseId, input.name))?.fine_tune_id;
  if (!current || current === input.expectedFineTuneId || current === input.fineTuneId) return undefined;
  return (await usableTarget(tx, input.licenseId, current)) ? current : undefined;
}

/** Points (or creates) `name` at the license's fine-tune `fineTuneId`, recorded with `actor`. */
export async function pointAlias(
  db: Executor,
  input: {
    licenseId: string;
    name: string;
    fineTuneId: string;
    actor: string;
    /**
     * Point only if the alias never pointed at this fine-tune (a request's alias wish, on activation:
     * a later re-activation does not undo the license's own switches).
     */
    firstTimeOnly?: boolean;
    /**
     * Point only if the alias still serves this fine-tune (null: serves nothing, or does not exist),
     * or the target already: a policy's promotion never undoes a switch made since it looked. An alias
     * left on a model that is no longer usable (deactivated, discarded) does not count as a switch.
     */
    expectedFineTuneId?: string | null;
  },
): Promise<AliasSwitch> {
  return inTransaction(db, async (tx) => {
    const target = await usableTarget(tx, input.licenseId, input.fineTuneId);
    if (!target) return { outcome: 'target_unusable' };
    if (input.expectedFineTuneId !== undefined) {
      const moved = await aliasSwitchedElsewhere(tx, {
        ...input,
        expectedFineTuneId: input.expectedFineTuneId,
      });
      if (moved) return { outcome: 'moved', currentFineTuneId: moved };
    }
    if (input.firstTimeOnly) {
      const before = await tx
        .selectFrom('model_alias_history')
        .select('id')
        .where('license_id', '=', input.licenseId)
        .where('name', '=', input.name)
        .where('to_fine_tune_id', '=', target.id)
        .limit(1)
        .executeTakeFirst();
      if (before) return { outcome: 'pointed_before' };
    }
    const created = await tx
      .insertInto('model_aliases')
      .values({ license_id: input.licenseId, name: input.name, fine_tune_id: target.id })
      .onConflict((oc) => oc.columns(['license_id', 'name']).doNothing())
      .returning('updated_at')
      .executeTakeFirst();
    if (created) {
      const change = await record(tx, { ...input, action: 'point', from: null, to: target.id });
      return { outcome: 'switched', alias: aliasOf(input.name, target, created.updated_at), change };
    }
    const current = await lockAlias(tx, input.licenseId, input.name);
    if (!current) throw new Error(`model_aliases row ${input.licenseId}/${input.name} vanished`);
    if (current.fine_tune_id === target.id)
      return { outcome: 'unchanged', alias: aliasOf(input.name, target, current.updated_at) };
    return switchAlias(tx, input, 'point', current.fine_tune_id, target);
  });
}

/**
 * Points `name` back at the target it had before its last switch (recorded as a `rollback`). Rolling
 * back twice returns to where the first rollback started.
 */
export async function rollbackAlias(
  db: Executor,
  input: { licenseId: string; name: string; actor: string },
): Promise<AliasSwitch> {
  return inTransaction(db, async (tx) => {
    const current = await lockAlias(tx, input.licenseId, input.name);
    if (!current) return { outcome: 'alias_not_found' };
    const last = await tx
      .selectFrom('model_alias_history')
      .select('from_fine_tune_id')
      .where('license_id', '=', input.licenseId)
      .where('name', '=', input.name)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const previous = last?.from_fine_tune_id ?? null;
    if (!previous) return { outcome: 'no_previous', reason: 'the alias has never been switched' };
    const target = await usableTarget(tx, input.licenseId, previous);
    if (!target)
      return {
        outcome: 'no_previous',
        reason: `the previous target ${previous} is no longer available and active`,
      };
    return switchAlias(tx, input, 'rollback', current.fine_tune_id, target);
  });
}

function aliasQuery(db: Executor, licenseId: string) {
  return db
    .selectFrom('model_aliases as a')
    .innerJoin('fine_tunes as f', 'f.id', 'a.fine_tune_id')
    .select([
      'a.name',
      'a.fine_tune_id',
      'a.updated_at',
      'f.fine_tuned_model',
      'f.base_model',
      'f.provider',
      'f.active',
    ])
    .where('a.license_id', '=', licenseId);
}

type AliasRow = {
  name: string;
  fine_tune_id: string;
  updated_at: Date;
  fine_tuned_model: string | null;
  base_model: string;
  provider: string | null;
  active: boolean;
};

const toAlias = (r: AliasRow): AliasRecord => ({
  name: r.name,
  fineTuneId: r.fine_tune_id,
  model: r.fine_tuned_model,
  baseModel: r.base_model,
  provider: r.provider,
  active: r.active,
  updatedAt: r.updated_at,
});

/**
 * The usable fine-tune (available, active, with a model) the license's alias `name` serves, unless it is
 * `except`: a training profile's champion.
 */
export async function findAliasTarget(
  db: Executor,
  input: { licenseId: string; name: string; except?: string },
): Promise<{ fineTuneId: string; model: string } | undefined> {
  let query = aliasQuery(db, input.licenseId)
    .where('a.name', '=', input.name)
    .where('f.active', '=', true)
    .where('f.available', '=', true)
    .where('f.fine_tuned_model', 'is not', null);
  if (input.except) query = query.where('f.id', '<>', input.except);
  const row = await query.executeTakeFirst();
  return row?.fine_tuned_model ? { fineTuneId: row.fine_tune_id, model: row.fine_tuned_model } : undefined;
}

/** The license's aliases by name. */
export async function listAliases(db: Executor, licenseId: string): Promise<AliasRecord[]> {
  const rows = await aliasQuery(db, licenseId).orderBy('a.name').execute();
  return rows.map(toAlias);
}

/** A history row as the alias pages show it: the change with the fine-tuned model names of both ends. */
export interface AliasHistoryEntry extends AliasChange {
  fromModel: string | null;
  toModel: string | null;
}

/** One alias of the license with its history, newest first (undefined for another license's alias). */
export async function findAlias(
  db: Executor,
  licenseId: string,
  name: string,
  historyLimit = 100,
): Promise<(AliasRecord & { history: AliasHistoryEntry[] }) | undefined> {
  const row = await aliasQuery(db, licenseId).where('a.name', '=', name).executeTakeFirst();
  if (!row) return undefined;
  const history = await db
    .selectFrom('model_alias_history as h')
    .leftJoin('fine_tunes as ff', 'ff.id', 'h.from_fine_tune_id')
    .leftJoin('fine_tunes as ft', 'ft.id', 'h.to_fine_tune_id')
    .select([
      'h.action',
      'h.from_fine_tune_id',
      'h.to_fine_tune_id',
      'h.actor',
      'h.created_at',
      'ff.fine_tuned_model as from_model',
      'ft.fine_tuned_model as to_model',
    ])
    .where('h.license_id', '=', licenseId)
    .where('h.name', '=', name)
    .orderBy('h.id', 'desc')
    .limit(historyLimit)
    .execute();
  return {
    ...toAlias(row),
    history: history.map((h) => ({
      action: h.action,
      fromFineTuneId: h.from_fine_tune_id,
      toFineTuneId: h.to_fine_tune_id,
      actor: h.actor,
      at: h.created_at,
      fromModel: h.from_model,
      toModel: h.to_model,
    })),
  };
}

/** The aliases of the license pointing at any of `fineTuneIds` (what the API shows on a fine-tune). */
export async function aliasesOfFineTunes(
  db: Executor,
  licenseId: string,
  fineTuneIds: string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (fineTuneIds.length === 0) return out;
  const rows = await db
    .selectFrom('model_aliases')
    .select(['name', 'fine_tune_id'])
    .where('license_id', '=', licenseId)
    .where('fine_tune_id', 'in', fineTuneIds)
    .orderBy('name')
    .execute();
  for (const r of rows) out.set(r.fine_tune_id, [...(out.get(r.fine_tune_id) ?? []), r.name]);
  return out;
}

/**
 * The gateway's model resolution, in one statement (function `resolve_active_model`, migration 0042):
 * the license's active fine-tune whose model name is `model`, else the active fine-tune the license's
 * alias `model` points at; `viaAlias` says whether the alias matched. Another license's model or alias
 * is never found. Its statements' plans are cached in the function (bench/aliases.bench.ts).
 */
export async function findActiveFineTuneByModelOrAlias(
  db: Executor,
  licenseId: string,
  model: string,
): Promise<(FineTuneRecord & { viaAlias: string | null }) | undefined> {
  const { rows } = await sql<FineTuneRow & { via_alias: string | null }>`
    SELECT (r.ft).*, r.via_alias FROM resolve_active_model(${licenseId}, ${model}) AS r`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  const { via_alias, ...fineTune } = row;
  return { ...toFineTuneRecord(fineTune), viaAlias: via_alias };
}
