import { randomUUID } from 'node:crypto';
import {
  fineTuneRequestMessage,
  type TrainingProfileSettings,
  trainingProfileSchema,
} from '@tuneline/contracts';
import {
  insertProfileVersion,
  inTransaction,
  latestProfileVersion,
  listEnabledProfileIds,
  lockTrainingProfile,
  profileCreditsSince,
  queueProfileNotifications,
  recordProfileDecision,
  storeChangesSince,
  writeOutbox,
} from '@tuneline/db';
import { defineStage } from '@tuneline/runtime';
import type { DatasetBuilderDeps } from './handler.ts';
import { decideRetrain, estimateVersionCredits, monthStart, type RetrainDecision } from './retrain-policy.ts';

export interface RetrainCheck {
  profileId: string;
  decision: RetrainDecision;
  /** The version started, when the decision was to train. */
  version?: number;
}

/** The fine-tune request of version `version`: the profile's settings over its stored documents. */
export function versionRequestId(profileName: string, version: number): string {
  return `profile-${profileName}-v${version}`;
}

/**
 * Decides about one profile and, when the policy says train, records version k+1 and queues its
 * fine-tune request in the same transaction. The profile row is locked meanwhile, and (profile, k+1) is
 * a key: two checks at once, or a check re-run after a crash, start version k+1 at most once. The
 * request then goes through the same queues and stages as any other. A refusal by the budget queues its
 * e-mail to the profile's notifyEmails in the same transaction, once per (profile, k+1).
 */
export async function checkTrainingProfile(
  deps: Pick<DatasetBuilderDeps, 'db' | 'catalogue'>,
  profileId: string,
  trigger: 'policy' | 'manual',
  now: Date = new Date(),
): Promise<RetrainCheck | undefined> {
  return inTransaction(deps.db, async (tx) => {
    const profile = await lockTrainingProfile(tx, profileId);
    if (!profile || (!profile.enabled && trigger === 'policy')) return undefined;
    const settings: TrainingProfileSettings = trainingProfileSchema.parse(profile.settings);
    const last = await latestProfileVersion(tx, profile.id);
    const store = { licenseId: profile.licenseId, configuration: settings.configuration };
    const changes = await storeChangesSince(tx, store, last?.changeSeq ?? 0n);
    const estimatedCredits = estimateVersionCredits(settings, changes, deps.catalogue);
    const decision = decideRetrain({
      policy: settings.policy,
      trigger,
      last,
      changes,
      now,
      estimatedCredits,
      usedThisMonth: await profileCreditsSince(tx, profile.id, monthStart(now)),
    });
    await recordProfileDecision(tx, profile.id, decision);
    const version = (last?.version ?? 0) + 1;
    if (decision.action === 'refuse') {
      // The budget refusal's e-mail: once per (profile, version), however often the check refuses it.
      await queueProfileNotifications(tx, {
        profileId: profile.id,
        version,
        kind: 'budget_refused',
        recipients: [settings.job.notifyEmails],
        correlationId: randomUUID(),
        detail: decision.reason,
      });
    }
    if (decision.action !== 'train') return { profileId, decision };

    const requestId = versionRequestId(profile.name, version);
    const created = await insertProfileVersion(tx, {
      profileId: profile.id,
      version,
      requestId,
      trigger,
      documents: changes.live,
      added: last ? changes.changed : changes.live,
      removed: changes.removed,
      changeSeq: changes.changeSeq,
      estimatedCredits,
    });
    if (!created)
      return { profileId, decision: { action: 'wait', reason: `version ${version} exists already` } };
    await writeOutbox(
      tx,
      fineTuneRequestMessage({
        correlationId: randomUUID(),
        request: {
          requestId,
          licenseId: profile.licenseId,
          documentStore: { configuration: settings.configuration, profile: { name: profile.name, version } },
          modelConfig: settings.modelConfig,
          dump: settings.dump,
          testPercent: settings.testPercent,
          baseModel: settings.baseModel,
          job: settings.job,
          autoTrain: true,
        },
      }),
    );
    return { profileId, decision, version };
  });
}

/**
 * The `retrain-check` queue: one profile (a manual re-train) or, from the scheduler, every enabled one.
 * Each profile is decided in its own transaction, so one bad profile does not hold up the others.
 */
export const retrainCheckStage = defineStage<'retrain-check', DatasetBuilderDeps>({
  queue: 'retrain-check',
  async handle(message, ctx, deps) {
    const ids = message.profileId ? [message.profileId] : await listEnabledProfileIds(deps.db);
    for (const id of ids) {
      const check = await checkTrainingProfile(deps, id, message.trigger);
      if (check) ctx.log.info({ ...check }, `training profile: ${check.decision.action}`);
    }
  },
});
