import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settleFineTune } from '@tuneline/billing';
import { parseEmailList } from '@tuneline/contracts';
import { type Db, getFineTune, getNotification } from '@tuneline/db';
import { parseMessage, startSmtpServer } from '@tuneline/harness';
import {
  fileMailer,
  HeaderInjectionError,
  isPermanentSmtpRejection,
  type NotifierDeps,
  notifierStage,
  outcomeEmail,
  sendNotification,
  smtpMailer,
} from '@tuneline/notifier';
import { configSchema as notifierConfigSchema } from '@tuneline/notifier/config';
import { createLogger, PermanentError, type RunningStage } from '@tuneline/runtime';
import { sql } from 'kysely';
import { afterAll, describe, expect } from 'vitest';
import { createFineTune, type FineTuneFixture } from '../billing/fixtures.ts';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

let t: TestDatabase;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
const log = createLogger('notifier', 'silent');
const FROM = 'Tuneline <no-reply@tuneline.test>';

test.beforeAll(async ({ database }) => {
  t = database;
  smtp = await startSmtpServer({
    'rejected@example.com': [550, 550, 550, 550],
    'pooled-rejected@example.com': [550],
    'pooled-later@example.com': [451],
    'flaky@example.com': [451],
  });
});
afterAll(async () => {
  await smtp.close();
});

function deps(mailer = smtpMailer(smtp.url, { timeoutMs: 5_000 })): NotifierDeps {
  return { db: t.db, log, mailer, mailFrom: FROM };
}

/** A settled fine-tune: billing wrote its notifications; returns them by recipient. */
async function settled(db: Db, fixture: FineTuneFixture) {
  const ft = await createFineTune(db, { grant: 5_000n, reserve: 1_000n, ...fixture });
  await db.transaction().execute((tx) => settleFineTune(tx, ft.id));
  const rows = await db.selectFrom('notifications').selectAll().where('fine_tune_id', '=', ft.id).execute();
  return { ft, byRecipient: Object.fromEntries(rows.map((r) => [r.recipient, r])) };
}

const mailsTo = (address: string) => smtp.received.filter((m) => m.to.includes(address));

describe('notifier stage against a loopback SMTP server', () => {
  it('delivers through the worker; a 5xx address fails alone while the other is delivered', async ({
    stages,
  }) => {
    const { ft, byRecipient } = await settled(t.db, {
      notifyEmails: ['ok@example.com', 'rejected@example.com'],
      trainedTokens: 123_456n,
    });
    let stage: RunningStage | undefined;
    try {
      stage = await stages.start(notifierStage, deps(), { concurrency: 2, timers: false });
      // Billing's outbox rows become notify-send jobs.
      expect(await stage.relayOutbox()).toBeGreaterThanOrEqual(2);
      await waitFor(async () => {
        const rows = await t.db
          .selectFrom('notifications')
          .select('status')
          .where('fine_tune_id', '=', ft.id)
          .execute();
        return rows.every((r) => r.status !== 'pending');
      });
    } finally {
      if (stage) await stages.close(stage, 5_000);
    }
    const rows = await t.db
      .selectFrom('notifications')
      .selectAll()
      .where('fine_tune_id', '=', ft.id)
      .execute();
    const ok = rows.find((r) => r.recipient === 'ok@example.com');
    const rejected = rows.find((r) => r.recipient === 'rejected@example.com');
    expect(ok).toMatchObject({ status: 'sent', attempts: 1, last_error: null });
    expect(ok?.sent_at).toBeInstanceOf(Date);
    expect(rejected).toMatchObject({ status: 'failed', attempts: 1, sent_at: null });
    expect(rejected?.last_error).toMatch(/550/);

    const mails = mailsTo('ok@example.com');
    expect(mails).toHaveLength(1);
    expect(mailsTo('rejected@example.com')).toHaveLength(0);
    const mail = mails[0]!;
    expect(mail.headers['message-id']).toBe(byRecipient['ok@example.com']?.message_id);
    expect(mail.headers.to).toBe('ok@example.com');
    expect(mail.headers.from).toBe(FROM);
    expect(mail.headers.subject).toBe('Tuneline: fine-tune inv-q3 succeeded');
    expect(mail.headers['x-tuneline-fine-tune']).toBe(ft.id);
    expect(mail.body).toContain('Outcome:           succeeded');
    expect(mail.body).toContain(`Model:             ${ft.fine_tuned_model}`);
    expect(mail.body).toContain('Trained tokens:    123,456');
    expect(mail.body).toContain('Credits charged:   371');
    expect(mail.body).toContain('Remaining balance: 4,629 credits');
  });

  it('a failure message carries the provider reason', async () => {
    const { byRecipient } = await settled(t.db, {
      status: 'failed',
      notifyEmails: ['failure@example.com'],
      trainedTokens: null,
      errorMessage: 'Invalid file format: line 12 is not valid JSON',
    });
    const n = byRecipient['failure@example.com']!;
    expect(await sendNotification(deps(), n.id)).toBe('sent');
    const [mail] = mailsTo('failure@example.com');
    expect(mail?.headers.subject).toBe('Tuneline: fine-tune inv-q3 failed');
    expect(mail?.body).toContain(
      'Reason given by the provider: Invalid file format: line 12 is not valid JSON',
    );
    expect(mail?.body).toContain('Credits charged:   0');
    expect(mail?.body).toContain('Remaining balance: 5,000 credits');
  });

  it('a 4xx then success delivers exactly once; later runs are no-ops', async () => {
    const { byRecipient } = await settled(t.db, { notifyEmails: ['flaky@example.com'] });
    const n = byRecipient['flaky@example.com']!;
    const first = await sendNotification(deps(), n.id).then(
      () => 'sent',
      (err: unknown) => err,
    );
    expect(first).toBeInstanceOf(Error);
    expect(first).not.toBeInstanceOf(PermanentError);
    const afterFirst = await t.db
      .selectFrom('notifications')
      .selectAll()
      .where('id', '=', n.id)
      .executeTakeFirst();
    expect(afterFirst).toMatchObject({ status: 'pending', attempts: 1 });
    expect(afterFirst?.last_error).toMatch(/451/);
    expect(await sendNotification(deps(), n.id)).toBe('sent');
    expect(await sendNotification(deps(), n.id)).toBe('already_done');
    expect(mailsTo('flaky@example.com')).toHaveLength(1);
    expect(
      await t.db.selectFrom('notifications').selectAll().where('id', '=', n.id).executeTakeFirst(),
    ).toMatchObject({
      status: 'sent',
      attempts: 2,
      last_error: null,
    });
  });

  it('a Postgres session killed during the send: the row is still marked sent, and no retry sends again', async () => {
    const { byRecipient } = await settled(t.db, { notifyEmails: ['killed-session@example.com'] });
    const n = byRecipient['killed-session@example.com']!;
    const smtpMail = smtpMailer(smtp.url, { timeoutMs: 5_000 });
    // The send goes through; meanwhile the backend holding the notification's lock is terminated
    // (as an operator's pg_terminate_backend or a failover would).
    const killing: typeof smtpMail = {
      ...smtpMail,
      async send(mail) {
        await sql`
          SELECT pg_terminate_backend(pid) FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`.execute(t.db);
        await smtpMail.send(mail);
      },
    };
    try {
      expect(await sendNotification(deps(killing), n.id)).toBe('sent');
      expect(await sendNotification(deps(), n.id)).toBe('already_done');
    } finally {
      smtpMail.close();
    }
    expect(mailsTo('killed-session@example.com')).toHaveLength(1);
    expect(
      await t.db.selectFrom('notifications').selectAll().where('id', '=', n.id).executeTakeFirst(),
    ).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('reuses pooled SMTP connections; a rejected message on one does not affect the next', async () => {
    const mailer = smtpMailer(smtp.url, { timeoutMs: 5_000, maxConnections: 1 });
    const mail = (to: string) => ({
      from: FROM,
      to,
      subject: 'pooled',
      text: 'body',
      messageId: `<${to}@tuneline>`,
      headers: {},
    });
    try {
      const outcomes = [];
      for (const to of [
        'pooled-1@example.com',
        'pooled-rejected@example.com',
        'pooled-later@example.com',
        'pooled-2@example.com',
      ]) {
        outcomes.push(
          await mailer.send(mail(to)).then(
            () => 'accepted',
            (err: unknown) => (isPermanentSmtpRejection(err) ? 'rejected' : 'temporary'),
          ),
        );
      }
      expect(outcomes).toEqual(['accepted', 'rejected', 'temporary', 'accepted']);
      const delivered = smtp.received.filter((m) => m.headers.subject === 'pooled');
      expect(delivered.map((m) => m.to[0])).toEqual(['pooled-1@example.com', 'pooled-2@example.com']);
      // One connection carried both, across the 550 and the 451 in between.
      expect(new Set(delivered.map((m) => m.session)).size).toBe(1);
    } finally {
      mailer.close();
    }
  });

  it('SMTP unreachable is transient: the row stays pending with the error recorded', async () => {
    const { byRecipient } = await settled(t.db, { notifyEmails: ['later@example.com'] });
    const n = byRecipient['later@example.com']!;
    const down = smtpMailer('smtp://127.0.0.1:1', { timeoutMs: 2_000 });
    const err = await sendNotification(deps(down), n.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentError);
    const row = await t.db.selectFrom('notifications').selectAll().where('id', '=', n.id).executeTakeFirst();
    expect(row).toMatchObject({ status: 'pending', attempts: 1 });
    expect(row?.last_error).toBeTruthy();
    // And recovery offers it again.
    const recovered = (await notifierStage.recover?.(deps())) ?? [];
    expect(recovered.map((m) => m.payload)).toContainEqual(expect.objectContaining({ notificationId: n.id }));
  });

  it('header injection is refused: at validation, by the database, and by the notifier itself', async () => {
    expect(parseEmailList('ok@example.com\r\nBcc: victim@example.com').ok).toBe(false);
    expect(parseEmailList('ok@example.com\nBcc: victim@example.com').ok).toBe(false);
    const { ft } = await settled(t.db, { notifyEmails: ['x@example.com'] });
    await expect(
      t.db
        .insertInto('notifications')
        .values({
          fine_tune_id: ft.id,
          kind: 'succeeded',
          recipient: 'a@example.com\r\nBcc: victim@example.com',
          message_id: '<injected@tuneline>',
        })
        .execute(),
    ).rejects.toThrow(/check constraint/);
    // A row that got past the other guards (not an address): failed for good, nothing sent.
    const bad = await t.db
      .insertInto('notifications')
      .values({
        fine_tune_id: ft.id,
        kind: 'succeeded',
        recipient: 'victim@example.com, other@example.com',
        message_id: '<bad@tuneline>',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const before = smtp.received.length;
    await expect(sendNotification(deps(), bad.id)).rejects.toBeInstanceOf(PermanentError);
    expect(smtp.received.length).toBe(before);
    expect(
      await t.db.selectFrom('notifications').select('status').where('id', '=', bad.id).executeTakeFirst(),
    ).toEqual({
      status: 'failed',
    });
    // A From header with a line break is refused by the config and by the message builder.
    const env = { DATABASE_URL: t.url, REDIS_URL: redisUrl(), MAIL_FROM: 'a@b.c\r\nBcc: victim@example.com' };
    expect(notifierConfigSchema.safeParse(env).success).toBe(false);
    const { id: notificationId } = await t.db
      .selectFrom('notifications')
      .select('id')
      .where('fine_tune_id', '=', ft.id)
      .executeTakeFirstOrThrow();
    const row = (await getNotification(t.db, notificationId))!;
    const fineTune = (await getFineTune(t.db, ft.id))!;
    const balance = { posted: 0n, pending: 0n, available: 0n, overageBlocked: false };
    expect(() => outcomeEmail(row, fineTune, balance, 'a@b.c\nBcc: victim@example.com')).toThrow(
      HeaderInjectionError,
    );
  });

  it('without SMTP, writes one .eml per notification (a retry replaces it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tuneline-mail-'));
    try {
      const { byRecipient } = await settled(t.db, { notifyEmails: ['eml@example.com'] });
      const n = byRecipient['eml@example.com']!;
      const mailer = fileMailer(dir);
      // Simulate the at-least-once window: the file is written twice for the same notification.
      await mailer.send(
        outcomeEmail(
          (await getNotification(t.db, n.id))!,
          (await getFineTune(t.db, n.fine_tune_id ?? ''))!,
          { posted: 0n, pending: 0n, available: 0n, overageBlocked: false },
          FROM,
        ),
      );
      expect(await sendNotification(deps(mailer), n.id)).toBe('sent');
      const files = await readdir(dir);
      expect(files).toEqual([`${n.id}.eml`]);
      const eml = parseMessage(await readFile(join(dir, files[0]!), 'utf8'));
      expect(eml.headers['message-id']).toBe(n.message_id);
      expect(eml.headers.to).toBe('eml@example.com');
      expect(eml.body).toContain('Remaining balance: 4,629 credits');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
