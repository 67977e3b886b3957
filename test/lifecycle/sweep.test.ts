import { fixedClock } from '@tuneline/contracts';
import { defaultCatalogue } from '@tuneline/dataset';
import { claimLifecycleWarnings, listLifecycleWarnings, recordLifecycleWarnings } from '@tuneline/db';
import { startSmtpServer } from '@tuneline/harness';
import { smtpMailer } from '@tuneline/notifier';
import { dueThreshold, type LifecycleSweepDeps, runLifecycleSweep } from '@tuneline/notifier/lifecycle-sweep';
import { createLogger } from '@tuneline/runtime';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../support/context.ts';

/**
 * The lifecycle sweep (issue 21.3) with a moved clock: each license warned 30, 7 and 1 days before a
 * base model's trainingClosesAt and shutdownAt at the provider of its fine-tunes (21.2: OpenAI's dates
 * for those at OpenAI, Azure's for those at Azure), exactly once per threshold, across a restart (new
 * deps, new mailer) and a sweep that died after claiming. Real Postgres, a real SMTP server on loopback.
 */

let t: TestDatabase;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
const clock = fixedClock('2026-11-01T00:00:00Z');
const log = createLogger('notifier', 'silent');

async function fineTuneOn(
  licenseId: string,
  baseModel: string,
  email: string,
  trained = true,
  provider: string | null = null,
) {
  const id = await makeFineTune(t.db, licenseId, await makeDataset(t.db, licenseId, 'uploaded'), {
    ...(trained ? {} : { status: 'failed' as const }),
  });
  await t.db
    .updateTable('fine_tunes')
    .set({ base_model: baseModel, notify_emails: [email], provider })
    .where('id', '=', id)
    .execute();
}

/** A notifier process's sweep deps: a restart is a new set (a new mailer, nothing in memory). */
const processDeps = (): LifecycleSweepDeps => ({
  db: t.db,
  catalogue: defaultCatalogue,
  clock,
  mailer: smtpMailer(smtp.url, { timeoutMs: 5_000 }),
  mailFrom: 'Tuneline <no-reply@tuneline.test>',
  log,
});

beforeAll(async () => {
  t = await createTestDatabase();
  smtp = await startSmtpServer();
  await makeLicense(t.db, 'lic-life-a');
  await makeLicense(t.db, 'lic-life-b');
  await makeLicense(t.db, 'lic-life-c');
  await makeLicense(t.db, 'lic-life-none');
  await makeLicense(t.db, 'lic-life-d');
  await fineTuneOn('lic-life-a', 'gpt-4o-mini-2024-07-18', 'a@example.com');
  await fineTuneOn('lic-life-b', 'gpt-4.1-nano-2025-04-14', 'b@example.com');
  // C's only fine-tune on 4o-mini failed: told about the training close, not about a shutdown.
  await fineTuneOn('lic-life-c', 'gpt-4o-mini-2024-07-18', 'c@example.com', false);
  // D trains 4o-mini at OpenAI (named) and at Azure: each fine-tune is warned by its own provider's dates.
  await fineTuneOn('lic-life-d', 'gpt-4o-mini-2024-07-18', 'd-openai@example.com', true, 'openai');
  await fineTuneOn('lic-life-d', 'gpt-4o-mini-2024-07-18', 'd-azure@example.com', true, 'azure');
}, 30_000);

afterAll(async () => {
  await smtp?.close();
  await t?.drop();
});

const mini = 'gpt-4o-mini-2024-07-18';
const nano = 'gpt-4.1-nano-2025-04-14';
const sent = () => smtp.received.map((m) => `${m.to.join(',')} ${m.headers['x-tuneline-lifecycle']}`).sort();

describe('lifecycle sweep', () => {
  it('picks the nearest threshold crossed', () => {
    expect(dueThreshold('2027-01-06', new Date('2026-12-07T00:00:00Z'))).toBe(30);
    expect(dueThreshold('2027-01-06', new Date('2026-12-06T23:00:00Z'))).toBeUndefined();
    expect(dueThreshold('2027-01-06', new Date('2027-01-01T00:00:00Z'))).toBe(7);
    expect(dueThreshold('2027-01-06', new Date('2027-01-05T00:00:00Z'))).toBe(1);
    expect(dueThreshold('2027-01-06', new Date('2027-01-06T00:00:00Z'))).toBeUndefined();
  });

  it('warns each affected license once per model, event and threshold as the clock moves', async () => {
    let deps = processDeps();
    expect((await runLifecycleSweep(deps)).recorded).toBe(0); // 66 days before: nothing due

    clock.set('2026-12-08T00:00:00Z'); // 29 days before training closes, 37 before the shutdown
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 4, sent: 4, failed: 0 });
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 0, sent: 0, failed: 0 });

    // A restart: a new process finds the rows and sends nothing twice.
    deps.mailer.close();
    deps = processDeps();
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 0, sent: 0, failed: 0 });
    clock.set('2026-12-16T00:00:00Z'); // 29 days before the shutdown
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 2, sent: 2, failed: 0 });

    // A sweep that died after recording and claiming the 7-day warnings, before e-mailing them.
    clock.set('2027-01-01T00:00:00Z');
    await recordLifecycleWarnings(t.db, {
      baseModel: 'gpt-4o-mini-2024-07-18',
      provider: 'openai',
      ownProvider: 'openai',
      event: 'training_closes',
      eventDate: '2027-01-06',
      thresholdDays: 7,
    });
    expect(await claimLifecycleWarnings(t.db)).toHaveLength(3);
    await t.db
      .updateTable('lifecycle_warnings')
      .set({ claimed_at: sql`now() - interval '1 hour'` })
      .where('status', '=', 'sending')
      .execute();
    deps.mailer.close();
    deps = processDeps();
    // B's 7-day warning is recorded now; A's, C's and D's claims are taken over: four e-mails, once each.
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 1, sent: 4, failed: 0 });

    for (const at of [
      '2027-01-05T12:00:00Z',
      '2027-01-08T00:00:00Z',
      '2027-01-13T06:00:00Z',
      '2027-01-20T00:00:00Z',
    ]) {
      clock.set(at);
      await runLifecycleSweep(deps);
      await runLifecycleSweep(deps);
    }
    deps.mailer.close();

    const A = 'a@example.com';
    const B = 'b@example.com';
    const C = 'c@example.com';
    const D = 'd-openai@example.com';
    const expected = [
      ...[30, 7, 1].flatMap((d) => [
        `${A} training_closes; ${mini}; openai; ${d}d`,
        `${B} training_closes; ${nano}; openai; ${d}d`,
        `${C} training_closes; ${mini}; openai; ${d}d`,
        `${D} training_closes; ${mini}; openai; ${d}d`,
        `${A} shutdown; ${mini}; openai; ${d}d`,
        `${D} shutdown; ${mini}; openai; ${d}d`,
      ]),
    ].sort();
    // OpenAI's dates never reached D's fine-tune at Azure.
    expect(sent()).toEqual(expected);
    const rows = await listLifecycleWarnings(t.db, 'lic-life-a');
    expect(rows.every((r) => r.status === 'sent' && r.attempts >= 1)).toBe(true);
    const mail = smtp.received.find(
      (m) => m.headers['x-tuneline-lifecycle'] === `shutdown; ${mini}; openai; 1d`,
    );
    expect(mail?.headers.subject).toContain(`${mini} at openai shuts down`);
    expect(mail?.body).toContain(`Suggested successor: azure:${mini}`);
    expect(mail?.body).toMatch(/Your models on it: ft:gpt-4o-mini/);
    // A license without fine-tunes on these models is never written to.
    expect(await listLifecycleWarnings(t.db, 'lic-life-none')).toEqual([]);
  });

  it("warns the fine-tunes at Azure by Azure's own dates, apart from OpenAI's", async () => {
    const deps = processDeps();
    const before = smtp.received.length;
    const azureMails = () =>
      smtp.received
        .slice(before)
        .map((m) => `${m.to.join(',')} ${m.headers['x-tuneline-lifecycle']}`)
        .sort();
    // Azure: training "no earlier than" 2027-04-01, deployments retire 2027-10-01.
    clock.set('2027-03-05T00:00:00Z'); // 27 days before Azure's training close
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 1, sent: 1, failed: 0 });
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 0, sent: 0, failed: 0 });
    clock.set('2027-03-31T00:00:00Z'); // 1 day before it (the 7-day threshold was never swept)
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 1, sent: 1, failed: 0 });
    clock.set('2027-09-30T00:00:00Z'); // 1 day before the Azure shutdown
    expect(await runLifecycleSweep(deps)).toEqual({ recorded: 1, sent: 1, failed: 0 });
    deps.mailer.close();
    const E = 'd-azure@example.com';
    expect(azureMails()).toEqual(
      [
        `${E} training_closes; ${mini}; azure; 30d`,
        `${E} training_closes; ${mini}; azure; 1d`,
        `${E} shutdown; ${mini}; azure; 1d`,
      ].sort(),
    );
    const mail = smtp.received.find(
      (m) => m.headers['x-tuneline-lifecycle'] === `shutdown; ${mini}; azure; 1d`,
    );
    expect(mail?.body).toContain('Suggested successor: azure:gpt-4.1-mini-2025-04-14');
    expect(mail?.body).toContain('Azure OpenAI model retirement schedule');
    // D holds OpenAI's and Azure's warnings side by side: one key per provider.
    const rows = await listLifecycleWarnings(t.db, 'lic-life-d');
    const keys = rows.map((r) => `${r.provider} ${r.event} ${r.thresholdDays}`);
    expect(keys).toContain('openai shutdown 1');
    expect(keys).toContain('azure shutdown 1');
    expect(new Set(keys).size).toBe(keys.length);
  });
});
