import { createHash } from 'node:crypto';
import { notifySendMessage, parseEmailList } from '@tuneline/contracts';
import { type Insertable, sql } from 'kysely';
import type { Db, Executor } from '../connection.ts';
import type { NotificationRow, NotificationStatus, NotificationsTable } from '../schema.ts';
import type { FineTuneRecord } from './fine-tunes.ts';
import { writeOutbox } from './outbox.ts';
import { firstRecord } from './records.ts';

/**
 * Outcome e-mails. The row is the claim: one per (fine-tune, outcome, recipient) under a unique key, with
 * a Message-ID derived from those three, so however often billing (or the trainer) runs, each person
 * gets one notification row and one `notify-send` message.
 */

/** A `notifications` row, camelCase. */
export interface NotificationRecord {
  id: string;
  /** The fine-tune it is about; null for a training profile's notification (then `profileId`). */
  fineTuneId: string | null;
  profileId: string | null;
  profileVersion: number | null;
  /** A profile notification's own correlation id (a fine-tune's is on the fine-tune). */
  correlationId: string | null;
  /** What a profile notification reports (the refusal's reason). */
  detail: string | null;
  /**
   * The outcome the message reports: succeeded, failed, cancelled, insufficient_credits, or
   * deployment_ended; for a profile, `budget_refused`.
   */
  kind: string;
  recipient: string;
  /** The deployment the message is about (`deployment_ended`), else null. */
  deploymentId: string | null;
  status: NotificationStatus;
  attempts: number;
  lastError: string | null;
  messageId: string;
  sentAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function toNotificationRecord(row: NotificationRow): NotificationRecord {
  return {
    id: row.id,
    fineTuneId: row.fine_tune_id,
    profileId: row.profile_id,
    profileVersion: row.profile_version,
    correlationId: row.correlation_id,
    detail: row.detail,
    kind: row.kind,
    recipient: row.recipient,
    deploymentId: row.deployment_id,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    messageId: row.message_id,
    sentAt: row.sent_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Stable per (fine-tune, kind, recipient, deployment): receivers can dedupe a rare second delivery on it.
 */
export function notificationMessageId(
  fineTuneId: string,
  kind: string,
  recipient: string,
  deploymentId?: string | null,
): string {
  const hash = createHash('sha256').update(recipient.toLowerCase()).digest('hex').slice(0, 16);
  const about = deploymentId ? `-${deploymentId}` : '';
  return `<ft-${fineTuneId}-${kind}${about}-${hash}@tuneline>`;
}

/**
 * Writes, in the caller's transaction, one notification per address of `notify_emails` (kind = the
 * fine-tune's status) and its `notify-send` outbox message. Rows that already exist are left alone.
 * Addresses that fail validation (they were validated on the way in; this is the last guard before a
 * mail header) are skipped. Returns how many notifications were created now.
 */
export async function queueOutcomeNotifications(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'status' | 'notifyEmails' | 'correlationId'>,
): Promise<number> {
  return queueNotifications(tx, fineTune, { kind: fineTune.status, deploymentId: null });
}

/**
 * One notification of `kind` per address of the fine-tune's `notify_emails`, about `deploymentId` when
 * given, with its `notify-send` message; once per (fine-tune, kind, recipient, deployment) whatever the
 * number of calls (the unique key).
 */
export async function queueNotifications(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'notifyEmails' | 'correlationId'>,
  about: { kind: string; deploymentId: string | null },
): Promise<number> {
  const { kind, deploymentId } = about;
  return insertNotifications(
    tx,
    validRecipients(fineTune.notifyEmails).map((recipient) => ({
      fine_tune_id: fineTune.id,
      kind,
      recipient,
      deployment_id: deploymentId,
      message_id: notificationMessageId(fineTune.id, kind, recipient, deploymentId),
    })),
    { subject: 'fine_tune_id', columns: ['fine_tune_id', 'kind', 'recipient', 'deployment_id'] },
    fineTune.correlationId,
  );
}

/**
 * Inserts the notifications, each once under its unique key (`key`: the fine-tune's or the profile's,
 * a partial index over the rows with that subject), and queues a `notify-send` message for each row
 * created now. Returns how many were created.
 */
async function insertNotifications(
  tx: Executor,
  notifications: Insertable<NotificationsTable>[],
  key: {
    subject: 'fine_tune_id' | 'profile_id';
    columns: readonly (keyof NotificationsTable & string)[];
  },
  correlationId: string,
): Promise<number> {
  if (notifications.length === 0) return 0;
  const created = await tx
    .insertInto('notifications')
    .values(notifications)
    .onConflict((oc) => oc.columns(key.columns).where(key.subject, 'is not', null).doNothing())
    .returning('id')
    .execute();
  for (const row of created) {
    await writeOutbox(tx, notifySendMessage({ notificationId: row.id, correlationId }));
  }
  return created.length;
}

/** The addresses of a list that pass validation (the list whole, else each address on its own). */
function validRecipients(addresses: readonly string[]): string[] {
  const parsed = parseEmailList(addresses.join(';'));
  if (parsed.ok) return parsed.emails;
  return addresses.filter((address) => {
    const one = parseEmailList(address);
    return one.ok && one.emails.length === 1;
  });
}

/** Stable per (profile, version, kind, recipient), like a fine-tune's. */
export function profileNotificationMessageId(
  profileId: string,
  version: number,
  kind: string,
  recipient: string,
): string {
  const hash = createHash('sha256').update(recipient.toLowerCase()).digest('hex').slice(0, 16);
  return `<profile-${profileId}-v${version}-${kind}-${hash}@tuneline>`;
}

/**
 * A training profile's notification (a re-train refused by the budget), in the caller's transaction:
 * one row per recipient under the unique key (profile, version, kind, recipient), and its `notify-send`
 * message. However often the check refuses version `version`, each person gets it once. Returns how
 * many were created now.
 */
export async function queueProfileNotifications(
  tx: Executor,
  input: {
    profileId: string;
    version: number;
    kind: string;
    recipients: readonly string[];
    correlationId: string;
    detail: string;
  },
): Promise<number> {
  return insertNotifications(
    tx,
    validRecipients(input.recipients).map((recipient) => ({
      profile_id: input.profileId,
      profile_version: input.version,
      kind: input.kind,
      recipient,
      correlation_id: input.correlationId,
      detail: input.detail,
      message_id: profileNotificationMessageId(input.profileId, input.version, input.kind, recipient),
    })),
    { subject: 'profile_id', columns: ['profile_id', 'profile_version', 'kind', 'recipient'] },
    input.correlationId,
  );
}

export async function getNotification(db: Executor, id: string): Promise<NotificationRecord | undefined> {
  return firstRecord(db.selectFrom('notifications').selectAll().where('id', '=', id), toNotificationRecord);
}

/**
 * Runs `send` on one pooled connection that holds the notification's session advisory lock for the
 * whole call, so one sender at a time talks to SMTP about it. `{ locked: false }` when another session
 * holds the lock. A session that died meanwhile has released its locks already.
 */
export async function withNotificationLock<T>(
  db: Db,
  id: string,
  send: (conn: Executor) => Promise<T>,
): Promise<{ locked: true; result: T } | { locked: false }> {
  return db.connection().execute(async (conn) => {
    const lockKey = `tuneline:notification:${id}`;
    const { rows } = await sql<{ locked: boolean }>`
      SELECT pg_try_advisory_lock(hashtextextended(${lockKey}, 0)) AS locked`.execute(conn);
    if (!rows[0]?.locked) return { locked: false };
    try {
      return { locked: true, result: await send(conn) };
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtextextended(${lockKey}, 0))`.execute(conn).catch(() => {});
    }
  });
}

/**
 * Claims one delivery attempt: locks the row while it is still pending and counts the attempt
 * before anything is sent (committed on its own, so a crash mid-send still shows the attempt).
 * Returns undefined when the notification is already sent or failed.
 */
export async function claimNotificationAttempt(
  db: Executor,
  id: string,
): Promise<NotificationRecord | undefined> {
  return firstRecord(
    db
      .updateTable('notifications')
      .set({ attempts: sql`attempts + 1`, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .returningAll(),
    toNotificationRecord,
  );
}

export async function markNotificationSent(db: Executor, id: string): Promise<boolean> {
  const result = await db
    .updateTable('notifications')
    .set({ status: 'sent', sent_at: sql`now()`, last_error: null, updated_at: sql`now()` })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Records why an attempt failed; `permanent` ends the notification (status failed). */
export async function recordNotificationError(
  db: Executor,
  id: string,
  error: string,
  permanent: boolean,
): Promise<void> {
  await db
    .updateTable('notifications')
    .set({
      last_error: error.slice(0, 2000),
      updated_at: sql`now()`,
      ...(permanent ? { status: 'failed' as const } : {}),
    })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

/** Pending notifications (for the notifier's recovery sweep), oldest first. */
export async function listPendingNotifications(
  db: Executor,
  limit = 10_000,
): Promise<(NotificationRecord & { correlationId: string })[]> {
  const rows = await db
    .selectFrom('notifications as n')
    .leftJoin('fine_tunes as f', 'f.id', 'n.fine_tune_id')
    .selectAll('n')
    .select(sql<string>`coalesce(n.correlation_id, f.correlation_id)`.as('subject_correlation_id'))
    .where('n.status', '=', 'pending')
    .orderBy('n.created_at')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ ...toNotificationRecord(row), correlationId: row.subject_correlation_id }));
}
