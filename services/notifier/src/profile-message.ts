import type { NotificationRecord, TrainingProfileRecord } from '@tuneline/db';
import type { OutgoingMail } from './mailer.ts';
import { header, validRecipient } from './message.ts';

/**
 * A training profile's notice (issue 22.2): today the one kind, `budget_refused`, a re-train the policy
 * would start but the month's budget does not allow. What it reports (`detail`) was stored with the
 * notification when the check refused, so a later decision never changes a message already queued.
 */
export function profileEmail(
  notification: Pick<
    NotificationRecord,
    'id' | 'recipient' | 'messageId' | 'kind' | 'profileVersion' | 'detail' | 'correlationId'
  >,
  profile: Pick<TrainingProfileRecord, 'id' | 'name' | 'licenseId'>,
  from: string,
): OutgoingMail {
  const version = notification.profileVersion ?? 0;
  const correlationId = notification.correlationId ?? '';
  const refused = notification.kind === 'budget_refused';
  const subject = refused
    ? `Tuneline: re-training "${profile.name}" refused by its monthly budget`
    : `Tuneline: training profile "${profile.name}": ${notification.kind}`;
  const lines = refused
    ? [
        `The training profile "${profile.name}" has enough new documents for version ${version}, but its estimate ` +
          'would exceed the monthly credit budget, so no re-train was started.',
        '',
        `Reason: ${(notification.detail ?? '').replace(/[\r\n]+/g, ' ')}`,
        '',
        'To train it, raise policy.monthlyBudgetCredits (POST /v1/training-profiles with the profile), or wait:',
        'the policy is checked again by itself, and the budget starts afresh each calendar month (UTC).',
        `This e-mail is sent once for version ${version}.`,
      ]
    : [`Training profile "${profile.name}", version ${version}: ${notification.detail ?? notification.kind}`];
  lines.push('', `License: ${profile.licenseId}`, `Correlation id: ${correlationId}`);
  return {
    from: header('From', from),
    to: header('To', validRecipient(notification.recipient)),
    subject: header('Subject', subject),
    text: `${lines.join('\n')}\n`,
    messageId: header('Message-ID', notification.messageId),
    headers: {
      'X-Tuneline-Training-Profile': header('X-Tuneline-Training-Profile', profile.id),
      'X-Tuneline-Notification': header('X-Tuneline-Notification', notification.id),
      'X-Tuneline-Correlation-Id': header('X-Tuneline-Correlation-Id', correlationId),
    },
  };
}
