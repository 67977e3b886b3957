import { type Clock, notifySendMessage } from '@tuneline/contracts';
import type { Catalogue } from '@tuneline/dataset';
import {
  claimNotificationAttempt,
  DEPLOYMENT_ENDED,
  type Executor,
  getDeployment,
  getFineTune,
  getNotification,
  getTrainingProfile,
  listPendingNotifications,
  markNotificationSent,
  type NotificationRecord,
  recordNotificationError,
  withNotificationLock,
} from '@tuneline/db';
import { getBalance } from '@tuneline/ledger';
import { defineStage, PermanentError, type StageDeps } from '@tuneline/runtime';
import { evaluationSection } from './evaluation-section.ts';
import { isPermanentSmtpRejection, type Mailer, type OutgoingMail } from './mailer.ts';
import { deploymentEndedEmail, HeaderInjectionError, outcomeEmail } from './message.ts';
import { profileEmail } from './profile-message.ts';
import { promotionSection, withPromotion } from './promotion-section.ts';

export { lifecycleSweepStage } from './lifecycle-sweep.ts';
export {
  fileMailer,
  isPermanentSmtpRejection,
  type Mailer,
  type OutgoingMail,
  smtpMailer,
} from './mailer.ts';
export { deploymentEndedEmail, HeaderInjectionError, outcomeEmail, validRecipient } from './message.ts';

export interface NotifierDeps extends StageDeps {
  mailer: Mailer;
  mailFrom: string;
  /** Where the hub is served (PUBLIC_URL): the e-mail links the fine-tune there. */
  publicUrl?: string;
  /** The lifecycle sweep's catalogue and clock (issue 21.3); the defaults when absent. */
  catalogue?: Catalogue;
  clock?: Clock;
}

export type SendOutcome = 'sent' | 'already_done';

/**
 * Sends one notification, at most one sender at a time: a session advisory lock per notification is
 * held on one connection for the whole send (a second worker with the same message backs off and
 * retries, then finds it sent). The attempt is counted and committed BEFORE the SMTP conversation; the
 * row is marked sent right after the server accepts.
 *
 * The remaining at-least-once window: if the process dies (or Postgres stays unreachable for the few
 * seconds `recordSent` retries) after the SMTP server accepted the message but before `sent` is
 * committed, the retry sends it again. That window is one UPDATE long, and the second copy carries the
 * same Message-ID, which receivers and most mail stores use to drop duplicates. SMTP offers no way to
 * make it smaller.
 */
export async function sendNotification(deps: NotifierDeps, notificationId: string): Promise<SendOutcome> {
  const existing = await getNotification(deps.db, notificationId);
  if (!existing) throw new PermanentError(`notification ${notificationId} does not exist`);
  if (existing.status !== 'pending') return 'already_done';

  const sent = await withNotificationLock(deps.db, notificationId, async (conn): Promise<SendOutcome> => {
    const claimed = await claimNotificationAttempt(conn, notificationId);
    if (!claimed) return 'already_done';
    let mail: OutgoingMail;
    try {
      mail = await composeMail(deps, conn, claimed);
    } catch (err) {
      if (err instanceof HeaderInjectionError) {
        await recordNotificationError(conn, notificationId, err.message, true);
        throw new PermanentError(err.message);
      }
      throw err;
    }
    try {
      await deps.mailer.send(mail);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (isPermanentSmtpRejection(err)) {
        await recordNotificationError(conn, notificationId, reason, true);
        throw new PermanentError(`${claimed.recipient} rejected: ${reason}`);
      }
      // 4xx, connection refused, timeouts: keep it pending and let the queue retry with backoff.
      await recordNotificationError(conn, notificationId, reason, false);
      throw err;
    }
    await recordSent(deps, conn, notificationId);
    return 'sent';
  });
  if (!sent.locked) throw new Error(`notification ${notificationId} is being sent by another worker`);
  return sent.result;
}

/** The message a claimed notification sends: a fine-tune's outcome or its deployment's end, or a training profile's notice. */
async function composeMail(
  deps: NotifierDeps,
  conn: Executor,
  claimed: NotificationRecord,
): Promise<OutgoingMail> {
  if (claimed.fineTuneId === null) {
    const profile = claimed.profileId ? await getTrainingProfile(conn, claimed.profileId) : undefined;
    if (!profile) throw new PermanentError(`notification ${claimed.id}: its training profile does not exist`);
    return profileEmail(claimed, profile, deps.mailFrom);
  }
  const fineTune = await getFineTune(conn, claimed.fineTuneId);
  if (!fineTune) throw new PermanentError(`fine-tune ${claimed.fineTuneId} does not exist`);
  const links = deps.publicUrl ? { publicUrl: deps.publicUrl } : {};
  if (claimed.kind === DEPLOYMENT_ENDED) {
    const deployment = claimed.deploymentId ? await getDeployment(conn, claimed.deploymentId) : undefined;
    if (!deployment) throw new PermanentError(`notification ${claimed.id} names no deployment`);
    return deploymentEndedEmail(claimed, fineTune, deployment, deps.mailFrom, links);
  }
  const evaluation =
    claimed.kind === 'succeeded'
      ? withPromotion(await evaluationSection(conn, fineTune), await promotionSection(conn, fineTune))
      : null;
  return outcomeEmail(claimed, fineTune, await getBalance(conn, fineTune.licenseId), deps.mailFrom, {
    evaluation,
    ...links,
  });
}

const MARK_SENT_ATTEMPTS = 5;

/**
 * The server accepted the message: marking the row must not fail just because the session that held
 * the lock died (a terminated backend, a dropped connection), or the job's retry would send it again.
 * So a failed mark is retried on fresh pooled connections for a few seconds before the job fails.
 */
async function recordSent(deps: NotifierDeps, conn: Executor, notificationId: string): Promise<void> {
  try {
    await markNotificationSent(conn, notificationId);
    return;
  } catch (err) {
    deps.log.warn({ notificationId, err: String(err) }, 'marking a sent notification failed; retrying');
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await markNotificationSent(deps.db, notificationId);
      return;
    } catch (err) {
      if (attempt >= MARK_SENT_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}

/** Stage 6: consumes `notify-send`. */
export const notifierStage = defineStage<'notify-send', NotifierDeps>({
  queue: 'notify-send',
  async handle(message, ctx, deps) {
    const outcome = await sendNotification(deps, message.notificationId);
    ctx.log.info(
      { notificationId: message.notificationId, outcome, via: deps.mailer.describe },
      'notification',
    );
  },
  /** Pending notifications (their message may have been lost with Redis). */
  async recover(deps) {
    const rows = await listPendingNotifications(deps.db);
    return rows.map((n) => notifySendMessage({ notificationId: n.id, correlationId: n.correlationId }));
  },
});
