import { type Selectable, sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { ProfileVersionsTable, TrainingProfilesTable } from '../schema.ts';
import { type PromotionRecord, toPromotion } from './promotions.ts';
import { firstRecord } from './records.ts';

/** A training profile; `settings` is the validated TrainingProfileSettings of the contracts package. */
export interface TrainingProfileRecord {
  id: string;
  licenseId: string;
  name: string;
  settings: unknown;
  enabled: boolean;
  lastDecision: string | null;
  lastDecisionReason: string | null;
  lastDecisionAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const profileColumns = [
  'id',
  'license_id',
  'name',
  'settings',
  'enabled',
  'last_decision',
  'last_decision_reason',
  'last_decision_at',
  'created_at',
  'updated_at',
] as const;

type ProfileRow = Pick<Selectable<TrainingProfilesTable>, (typeof profileColumns)[number]>;

const toProfile = (r: ProfileRow): TrainingProfileRecord => ({
  id: r.id,
  licenseId: r.license_id,
  name: r.name,
  settings: r.settings,
  enabled: r.enabled,
  lastDecision: r.last_decision,
  lastDecisionReason: r.last_decision_reason,
  lastDecisionAt: r.last_decision_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The profiles' columns, as a select to narrow. */
const profiles = (db: Executor) => db.selectFrom('training_profiles').select(profileColumns);

/** Creates the license's profile of that name, or replaces its settings (its versions stay). */
export async function saveTrainingProfile(
  db: Executor,
  input: { licenseId: string; name: string; settings: unknown; enabled: boolean },
): Promise<{ profile: TrainingProfileRecord; created: boolean }> {
  const row = await db
    .insertInto('training_profiles')
    .values({
      license_id: input.licenseId,
      name: input.name,
      settings: JSON.stringify(input.settings),
      enabled: input.enabled,
    })
    .onConflict((oc) =>
      oc.columns(['license_id', 'name']).doUpdateSet({
        settings: sql`excluded.settings`,
        enabled: sql`excluded.enabled`,
        updated_at: sql`now()`,
      }),
    )
    .returning([...profileColumns, sql<boolean>`(xmax = 0)`.as('inserted')])
    .executeTakeFirstOrThrow();
  return { profile: toProfile(row), created: row.inserted };
}

export async function findTrainingProfile(
  db: Executor,
  licenseId: string,
  name: string,
): Promise<TrainingProfileRecord | undefined> {
  return firstRecord(profiles(db).where('license_id', '=', licenseId).where('name', '=', name), toProfile);
}

export async function getTrainingProfile(
  db: Executor,
  id: string,
): Promise<TrainingProfileRecord | undefined> {
  return firstRecord(profiles(db).where('id', '=', id), toProfile);
}

export async function listTrainingProfiles(
  db: Executor,
  licenseId: string,
): Promise<TrainingProfileRecord[]> {
  const rows = await profiles(db).where('license_id', '=', licenseId).orderBy('name').execute();
  return rows.map(toProfile);
}

/** Ids of the profiles the re-train check looks at. */
export async function listEnabledProfileIds(db: Executor): Promise<string[]> {
  const rows = await db
    .selectFrom('training_profiles')
    .select('id')
    .where('enabled', '=', true)
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * The profile, locked for the rest of the transaction: two re-train checks deciding about one profile
 * take turns, so the second sees the version the first created.
 */
export async function lockTrainingProfile(
  tx: Executor,
  id: string,
): Promise<TrainingProfileRecord | undefined> {
  return firstRecord(profiles(tx).where('id', '=', id).forUpdate(), toProfile);
}

export async function recordProfileDecision(
  tx: Executor,
  id: string,
  decision: { action: string; reason: string },
): Promise<void> {
  await tx
    .updateTable('training_profiles')
    .set({
      last_decision: decision.action,
      last_decision_reason: decision.reason,
      last_decision_at: sql`now()`,
    })
    .where('id', '=', id)
    .execute();
}

export interface ProfileVersionRecord {
  profileId: string;
  version: number;
  requestId: string;
  trigger: 'policy' | 'manual';
  documents: number;
  added: number;
  removed: number;
  changeSeq: bigint;
  estimatedCredits: bigint;
  createdAt: Date;
}

type VersionRow = Selectable<ProfileVersionsTable>;

const toVersion = (r: VersionRow): ProfileVersionRecord => ({
  profileId: r.profile_id,
  version: r.version,
  requestId: r.request_id,
  trigger: r.trigger,
  documents: r.documents,
  added: r.added,
  removed: r.removed,
  changeSeq: BigInt(r.change_seq),
  estimatedCredits: BigInt(r.estimated_credits),
  createdAt: r.created_at,
});

export async function latestProfileVersion(
  db: Executor,
  profileId: string,
): Promise<ProfileVersionRecord | undefined> {
  return firstRecord(
    db
      .selectFrom('profile_versions')
      .selectAll()
      .where('profile_id', '=', profileId)
      .orderBy('version', 'desc')
      .limit(1),
    toVersion,
  );
}

/**
 * Newest first, each with the status of the dataset its request built (none yet: null), its model (the
 * decided fine-tune, else the dataset's newest) and what became of it (issue 22.4; null: undecided).
 */
export async function listProfileVersions(
  db: Executor,
  profile: { id: string; licenseId: string },
): Promise<
  (ProfileVersionRecord & {
    datasetId: string | null;
    datasetStatus: string | null;
    fineTuneId: string | null;
    model: string | null;
    promotion: PromotionRecord | null;
  })[]
> {
  const rows = await db
    .selectFrom('profile_versions as v')
    .leftJoin('fine_tune_requests as r', (join) =>
      join.onRef('r.request_id', '=', 'v.request_id').on('r.license_id', '=', profile.licenseId),
    )
    .leftJoin('datasets as d', 'd.request_row_id', 'r.id')
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('fine_tunes as f')
          .select(['f.id as model_fine_tune_id', 'f.fine_tuned_model'])
          .whereRef('f.dataset_id', '=', 'd.id')
          .where((w) => w.or([w('v.fine_tune_id', 'is', null), w('f.id', '=', w.ref('v.fine_tune_id'))]))
          .orderBy('f.created_at', 'desc')
          .limit(1)
          .as('m'),
      (join) => join.onTrue(),
    )
    .selectAll('v')
    .select([
      'd.id as dataset_id',
      'd.status as dataset_status',
      'm.model_fine_tune_id',
      'm.fine_tuned_model',
    ])
    .where('v.profile_id', '=', profile.id)
    .orderBy('v.version', 'desc')
    .execute();
  return rows.map((r) => ({
    ...toVersion(r),
    datasetId: r.dataset_id,
    datasetStatus: r.dataset_status,
    fineTuneId: r.model_fine_tune_id,
    model: r.fine_tuned_model,
    promotion: toPromotion(r),
  }));
}

/** The decision to train version k: false when (profile, k) exists already (another check made it). */
export async function insertProfileVersion(
  tx: Executor,
  v: Omit<ProfileVersionRecord, 'createdAt'>,
): Promise<boolean> {
  const inserted = await tx
    .insertInto('profile_versions')
    .values({
      profile_id: v.profileId,
      version: v.version,
      request_id: v.requestId,
      trigger: v.trigger,
      documents: v.documents,
      added: v.added,
      removed: v.removed,
      change_seq: v.changeSeq.toString(),
      estimated_credits: v.estimatedCredits.toString(),
    })
    .onConflict((oc) => oc.columns(['profile_id', 'version']).doNothing())
    .returning('version')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** Credits the profile's versions were estimated at since `since` (the month's budget use). */
export async function profileCreditsSince(tx: Executor, profileId: string, since: Date): Promise<bigint> {
  const row = await tx
    .selectFrom('profile_versions')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<string>('estimated_credits'), sql<string>`0`).as('credits'))
    .where('profile_id', '=', profileId)
    .where('created_at', '>=', since)
    .executeTakeFirstOrThrow();
  return BigInt(row.credits);
}

export interface StoreChanges {
  /** Documents future datasets include now. */
  live: number;
  /** Bytes of their text and fields (for a token estimate before building). */
  liveBytes: number;
  /** Live documents added or changed after `sinceSeq`. */
  changed: number;
  /** Documents deleted after `sinceSeq`. */
  removed: number;
  /** The store's position now (0 when empty). */
  changeSeq: bigint;
}

/** What changed in one configuration of the store after position `sinceSeq` (0: everything). */
export async function storeChangesSince(
  tx: Executor,
  key: { licenseId: string; configuration: string },
  sinceSeq: bigint,
): Promise<StoreChanges> {
  const row = await tx
    .selectFrom('documents')
    .select((eb) => [
      eb.fn.count<string>('document_id').filterWhere('deleted_at', 'is', null).as('live'),
      sql<string>`coalesce(sum(octet_length(text) + octet_length(fields::text)) filter (where deleted_at is null), 0)`.as(
        'live_bytes',
      ),
      eb.fn
        .count<string>('document_id')
        .filterWhere((f) => f.and([f('deleted_at', 'is', null), f('change_seq', '>', sinceSeq.toString())]))
        .as('changed'),
      eb.fn
        .count<string>('document_id')
        .filterWhere((f) =>
          f.and([f('deleted_at', 'is not', null), f('change_seq', '>', sinceSeq.toString())]),
        )
        .as('removed'),
      eb.fn.coalesce(eb.fn.max('change_seq'), sql<string>`0`).as('change_seq'),
    ])
    .where('license_id', '=', key.licenseId)
    .where('configuration', '=', key.configuration)
    .executeTakeFirstOrThrow();
  return {
    live: Number(row.live),
    liveBytes: Number(row.live_bytes),
    changed: Number(row.changed),
    removed: Number(row.removed),
    changeSeq: BigInt(row.change_seq),
  };
}
