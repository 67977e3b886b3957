import { checkTrainingProfile } from '@tuneline/dataset-builder/retrain';
import { type Db, listPendingNotifications, recordRecovery } from '@tuneline/db';
import { sendNotification } from '@tuneline/notifier';
import { createLogger } from '@tuneline/runtime';
import { afterAll, describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { it, test } from '../support/fixtures.ts';
import { memoryMailer } from '../support/memory-mailer.ts';
import { builderDeps, drainOutbox, ingest, invoice, saveProfile } from './support.ts';

// The budget refusal's e-mail (issue 22.2): a re-train the policy would start but the monthly budget
// refuses is mailed to the profile's notifyEmails once per (profile, version), however often the check
// runs or races, through the notifier's usual exactly-once send.

const log = createLogger('test', 'silent');
let env: ReturnType<typeof builderDeps>;

test.beforeAll(async ({ db }) => {
  env = builderDeps(db);
});

afterAll(() => env?.cleanup());

const documents = (n: number, from = 0) => Array.from({ length: n }, (_, i) => invoice(`b${from + i}`));

async function profileMails(db: Db, profileId: string) {
  return db
    .selectFrom('notifications')
    .select(['id', 'recipient', 'profile_version', 'kind', 'detail', 'fine_tune_id'])
    .where('profile_id', '=', profileId)
    .orderBy('profile_version')
    .orderBy('recipient')
    .execute();
}

describe('the budget refusal e-mail', () => {
  it('goes once per recipient for a refused version, however often the check refuses it', async ({ db }) => {
    await makeLicense(db, 'lic-mail');
    const job = { notifyEmails: 'owner@example.com; cfo@example.com' };
    const policy = { minNewDocuments: 10, minIntervalHours: 0, monthlyBudgetCredits: 1 };
    const profile = await saveProfile(db, 'lic-mail', { job, policy });
    await ingest(db, 'lic-mail', documents(40));

    // Two checks at once, then two more later: four refusals of version 1.
    const checks = await Promise.all([
      checkTrainingProfile(env.deps, profile.id, 'policy'),
      checkTrainingProfile(env.deps, profile.id, 'policy'),
    ]);
    checks.push(await checkTrainingProfile(env.deps, profile.id, 'policy'));
    checks.push(await checkTrainingProfile(env.deps, profile.id, 'manual'));
    expect(checks.map((c) => c?.decision.action)).toEqual(['refuse', 'refuse', 'refuse', 'refuse']);
    const reason = checks[0]?.decision.reason ?? '';

    const rows = await profileMails(db, profile.id);
    expect(rows).toEqual([
      expect.objectContaining({
        recipient: 'cfo@example.com',
        profile_version: 1,
        kind: 'budget_refused',
        detail: reason,
      }),
      expect.objectContaining({
        recipient: 'owner@example.com',
        profile_version: 1,
        kind: 'budget_refused',
        detail: reason,
      }),
    ]);
    expect(rows.every((r) => r.fine_tune_id === null)).toBe(true);
    const sends = (await drainOutbox(db)).filter((o) => o.queue === 'notify-send');
    expect(sends.map((o) => (o.payload as { notificationId: string }).notificationId).sort()).toEqual(
      rows.map((r) => r.id).sort(),
    );

    // The recovery sweep finds them with their own correlation id, and a dead letter names the license.
    const pending = (await listPendingNotifications(db)).filter((n) => n.profileId === profile.id);
    expect(pending).toHaveLength(2);
    expect(pending.every((n) => /^[0-9a-f-]{36}$/.test(n.correlationId))).toBe(true);
    const dead = await recordRecovery(db, {
      queue: 'notify-send',
      jobId: `notify-send-${rows[0]?.id}`,
      subjectKind: 'notification',
      subjectId: rows[0]?.id ?? '',
      payload: {},
      reason: 'test',
      cap: 3,
    });
    expect(dead.licenseId).toBe('lic-mail');

    // The notifier sends each once (a second delivery of the job finds it sent).
    const mailer = memoryMailer();
    const deps = { db, log, mailer, mailFrom: 'tuneline@example.com' };
    for (const row of rows) {
      expect(await sendNotification(deps, row.id)).toBe('sent');
      expect(await sendNotification(deps, row.id)).toBe('already_done');
    }
    expect(mailer.sent.map((m) => m.to)).toEqual(['cfo@example.com', 'owner@example.com']);
    const [mail] = mailer.sent;
    expect(mail?.subject).toBe('Tuneline: re-training "invoices" refused by its monthly budget');
    expect(mail?.text).toContain(
      'The training profile "invoices" has enough new documents for version 1, but its estimate would exceed the monthly credit budget, so no re-train was started.',
    );
    expect(mail?.text).toContain(`Reason: ${reason}`);
    expect(mail?.text).toContain('This e-mail is sent once for version 1.');
    expect(mail?.headers['X-Tuneline-Training-Profile']).toBe(profile.id);
    expect(mail?.messageId).toMatch(
      new RegExp(`^<profile-${profile.id}-v1-budget_refused-[0-9a-f]{16}@tuneline>$`),
    );

    // The budget raised, version 1 trains; lowered again, version 2's refusal is mailed once more.
    const raised = await saveProfile(db, 'lic-mail', {
      job,
      policy: { ...policy, monthlyBudgetCredits: 10_000_000 },
    });
    expect((await checkTrainingProfile(env.deps, raised.id, 'policy'))?.version).toBe(1);
    await saveProfile(db, 'lic-mail', { job, policy });
    await ingest(db, 'lic-mail', documents(20, 100));
    expect((await checkTrainingProfile(env.deps, profile.id, 'policy'))?.decision.action).toBe('refuse');
    expect((await checkTrainingProfile(env.deps, profile.id, 'policy'))?.decision.action).toBe('refuse');
    const after = await profileMails(db, profile.id);
    expect(after.map((r) => [r.profile_version, r.recipient])).toEqual([
      [1, 'cfo@example.com'],
      [1, 'owner@example.com'],
      [2, 'cfo@example.com'],
      [2, 'owner@example.com'],
    ]);
  });

  it('sends nothing when the profile names no recipient', async ({ db }) => {
    await makeLicense(db, 'lic-quiet');
    const profile = await saveProfile(db, 'lic-quiet', {
      policy: { minNewDocuments: 10, minIntervalHours: 0, monthlyBudgetCredits: 1 },
    });
    await ingest(db, 'lic-quiet', documents(40, 500));
    expect((await checkTrainingProfile(env.deps, profile.id, 'policy'))?.decision.action).toBe('refuse');
    expect(await profileMails(db, profile.id)).toEqual([]);
  });
});
