import { createHash } from 'node:crypto';
import { notifySendMessage, parseEmailList } from '@tuneline/contracts';
import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { FineTune, Notification } from '../schema.ts';
import { writeOutbox } from './outbox.ts';

/**
 * Outcome e-mails. The row is the claim: one per (fine-tune, outcome, recipient) under a unique key, with
 * a Message-ID derived from those three, so however often billing (or the trainer) runs, each person
 * gets one notification row and one `notify-send` message.
 */

/** Stable per (fine-tune, kind, recipient): receivers can dedupe a rare second delivery on it. */
export function notificationMessageId(fineTuneId: string, kind: string, recipient: string): string {
  const hash = createHash('sha256').update(recipient.toLowerCase()).digest('hex').slice(0, 16);
  return `<ft-${fineTuneId}-${kind}-${hash}@tuneline>`;
}

/**
 * Writes, in the caller's transaction, one notification per address of `notify_emails` (kind = the
 * fine-tune's status) and its `notify-send` outbox message. Rows that already exist are left alone.
 * Addresses that fail validation (they were validated on the way in; this is the last guard before a
 * mail header) are skipped. Returns how many notifications were created now.
 */
export async function queueOutcomeNotifications(
  tx: Executor,
  fineTune: Pick<FineTune, 'id' | 'status' | 'notify_emails' | 'correlation_id'>,
): Promise<number> {
  const parsed = parseEmailList(fineTune.notify_emails.join(';'));
  const recipients = parsed.ok
    ? parsed.emails
    : fineTune.notify_emails.filter((address) => {
        const one = parseEmailList(address);
        return one.ok && one.emails.length === 1;
      });
  if (recipients.length === 0) return 0;
  const kind = fineTune.status;
  const created = await tx
    .insertInto('notifications')
    .values(
      recipients.map((recipient) => ({
        fine_tune_id: fineTune.id,
        kind,
        recipient,
        message_id: notificationMessageId(fineTune.id, kind, recipient),
      })),
    )
    .onConflict((oc) => oc.columns(['fine_tune_id', 'kind', 'recipient']).doNothing())
    .returning('id')
    .execute();
  for (const row of created) {
    await writeOutbox(
      tx,
      notifySendMessage({ notificationId: row.id, correlationId: fineTune.correlation_id }),
    );
  }
  return created.length;
}

export async function getNotification(db: Executor, id: string): Promise<Notification | undefined> {
  return db.selectFrom('notifications').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Claims one delivery attempt: locks the row while it is still pending and counts the attempt
 * before anything is sent (committed on its own, so a crash mid-send still shows the attempt).
 * Returns undefined when the notification is already sent or failed.
 */
export async function claimNotificationAttempt(db: Executor, id: string): Promise<Notification | undefined> {
  return db
    .updateTable('notifications')
    .set({ attempts: sql`attempts + 1`, updated_at: sql`now()` })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .returningAll()
    .executeTakeFirst();
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
): Promise<(Notification & { correlation_id: string })[]> {
  return db
    .selectFrom('notifications as n')
    .innerJoin('fine_tunes as f', 'f.id', 'n.fine_tune_id')
    .selectAll('n')
    .select('f.correlation_id')
    .where('n.status', '=', 'pending')
    .orderBy('n.created_at')
    .limit(limit)
    .execute();
}
