import { parseEmailList } from '@tuneline/contracts';
import type { DeploymentRecord, FineTuneRecord, NotificationRecord } from '@tuneline/db';
import type { Balance } from '@tuneline/ledger';
import type { EvaluationSection } from './evaluation-section.ts';
import { escapeHtml } from './evaluation-section.ts';
import type { OutgoingMail } from './mailer.ts';

/** A header value that would let a line break through is refused before anything is sent. */
export class HeaderInjectionError extends Error {
  override name = 'HeaderInjectionError';
}

/** A header value, refused when a line break would let it through. */
export function header(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new HeaderInjectionError(`${name} header contains a line break`);
  return value;
}

const OUTCOME: Record<string, string> = {
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'was cancelled',
  insufficient_credits: 'was not started: not enough credits',
};

const fmt = (n: bigint | null | undefined) =>
  n === null || n === undefined ? 'n/a' : BigInt(n).toLocaleString('en-US');

/** Validates the recipient once more: exactly one valid address, no CR/LF. */
export function validRecipient(recipient: string): string {
  const parsed = parseEmailList(recipient);
  if (!parsed.ok) throw new HeaderInjectionError(`recipient rejected: ${parsed.message}`);
  if (parsed.emails.length !== 1) throw new HeaderInjectionError('recipient must be exactly one address');
  return parsed.emails[0] as string;
}

/** The outcome e-mail: what happened, the model, tokens, credits charged, the balance left, and why it failed. */
export function outcomeEmail(
  notification: Pick<NotificationRecord, 'id' | 'recipient' | 'messageId' | 'kind'>,
  fineTune: FineTuneRecord,
  balance: Balance,
  from: string,
  extra: { evaluation?: EvaluationSection | null; publicUrl?: string } = {},
): OutgoingMail {
  const outcome = OUTCOME[notification.kind] ?? notification.kind;
  const model = fineTune.fineTunedModel ?? `${fineTune.baseModel} (base model)`;
  const lines = [
    `Your fine-tune "${fineTune.suffix}" ${outcome}.`,
    '',
    `Outcome:           ${notification.kind}`,
    `Model:             ${model}`,
    `Base model:        ${fineTune.baseModel}`,
    `Trained tokens:    ${fmt(fineTune.trainedTokens)}`,
    `Credits charged:   ${fmt(fineTune.creditsCharged ?? 0n)}`,
    `Remaining balance: ${fmt(balance.available)} credits`,
  ];
  if (fineTune.description) lines.push(`Description:       ${fineTune.description.replace(/[\r\n]+/g, ' ')}`);
  if (notification.kind === 'failed' || notification.kind === 'cancelled') {
    const reason = fineTune.errorMessage ?? fineTune.errorCode;
    if (reason) lines.push('', `Reason given by the provider: ${reason}`);
  }
  if (notification.kind === 'insufficient_credits') {
    // The trainer's reason names the estimate, the margin, the available credits and the shortfall.
    if (fineTune.errorMessage) lines.push('', fineTune.errorMessage.replace(/[\r\n]+/g, ' '));
    lines.push('', 'Add credits to the license and start the fine-tune again.');
  }
  if (notification.kind === 'succeeded') {
    // Active already when a training profile's rule promoted it (or the license activated it since).
    lines.push(
      '',
      fineTune.active
        ? 'The model is active: the API and the gateway serve it.'
        : 'The model is available: activate it from the hub to use it.',
    );
  }
  if (balance.overageBlocked) {
    lines.push('', 'Note: the last charge exceeded the balance; new fine-tunes are blocked until a top-up.');
  }
  const hubLink = extra.publicUrl ? hubUrl(extra.publicUrl, fineTune.id) : null;
  const evaluation = extra.evaluation ?? null;
  const bodyLines = [...lines];
  if (evaluation) lines.push('', evaluation.text);
  lines.push('', `Fine-tune id: ${fineTune.id}`, `Correlation id: ${fineTune.correlationId}`);
  if (hubLink) lines.push(`In the hub: ${hubLink}`);
  return {
    from: header('From', from),
    to: header('To', validRecipient(notification.recipient)),
    subject: header('Subject', `Tuneline: fine-tune ${fineTune.suffix} ${outcome}`),
    text: `${lines.join('\n')}\n`,
    html: outcomeHtml(bodyLines, evaluation, fineTune.id, hubLink),
    messageId: header('Message-ID', notification.messageId),
    headers: {
      'X-Tuneline-Fine-Tune': header('X-Tuneline-Fine-Tune', fineTune.id),
      'X-Tuneline-Notification': header('X-Tuneline-Notification', notification.id),
      'X-Tuneline-Correlation-Id': header('X-Tuneline-Correlation-Id', fineTune.correlationId),
    },
  };
}

/**
 * A deployment that ended without the license asking (Azure deleted it after 15 idle days, or reports
 * it failed): the model serves nothing any more, why, what it was billed, and how to serve it again.
 */
export function deploymentEndedEmail(
  notification: Pick<NotificationRecord, 'id' | 'recipient' | 'messageId'>,
  fineTune: FineTuneRecord,
  deployment: DeploymentRecord,
  from: string,
  extra: { publicUrl?: string } = {},
): OutgoingMail {
  const model = fineTune.fineTunedModel ?? fineTune.suffix;
  const hubLink = extra.publicUrl ? hubUrl(extra.publicUrl, fineTune.id) : null;
  const lines = [
    `Your model ${model} is no longer deployed and serves nothing: calls to it (and to aliases pointing at it) answer 404.`,
    '',
    `Reason:            ${(deployment.reason ?? 'the deployment ended').replace(/[\r\n]+/g, ' ')}`,
    `Deployment:        ${deployment.name} (${deployment.provider})`,
    `Ended:             ${deployment.endedAt?.toISOString() ?? 'n/a'}`,
    `Hosting fee:       ${fmt(deployment.creditsPerHour)} credits per started hour while deployed`,
    '',
    'Activate the model again (hub or POST /v1/fine-tunes/{id}/activate) to deploy it again.',
    '',
    `Fine-tune id: ${fineTune.id}`,
    `Correlation id: ${fineTune.correlationId}`,
  ];
  if (hubLink) lines.push(`In the hub: ${hubLink}`);
  return {
    from: header('From', from),
    to: header('To', validRecipient(notification.recipient)),
    subject: header('Subject', `Tuneline: model ${fineTune.suffix} is no longer deployed`),
    text: `${lines.join('\n')}\n`,
    messageId: header('Message-ID', notification.messageId),
    headers: {
      'X-Tuneline-Fine-Tune': header('X-Tuneline-Fine-Tune', fineTune.id),
      'X-Tuneline-Notification': header('X-Tuneline-Notification', notification.id),
      'X-Tuneline-Deployment': header('X-Tuneline-Deployment', deployment.id),
      'X-Tuneline-Correlation-Id': header('X-Tuneline-Correlation-Id', fineTune.correlationId),
    },
  };
}

/** The fine-tune's page in the hub. */
export function hubUrl(publicUrl: string, fineTuneId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/hub/#fine-tune=${encodeURIComponent(fineTuneId)}`;
}

/** The HTML alternative: the same lines, the evaluation table, the link to the hub. */
function outcomeHtml(
  lines: string[],
  evaluation: EvaluationSection | null,
  fineTuneId: string,
  hubLink: string | null,
): string {
  const paragraphs = lines
    .join('\n')
    .split(/\n{2,}/)
    .map((p) => `<p style="white-space:pre-wrap;font-family:monospace">${escapeHtml(p)}</p>`);
  const link = hubLink ? `<p><a href="${escapeHtml(hubLink)}">Open the fine-tune in the hub</a></p>` : '';
  return (
    `<!doctype html><html><body>${paragraphs.join('')}${evaluation?.html ?? ''}` +
    `<p>Fine-tune id: <code>${escapeHtml(fineTuneId)}</code></p>${link}</body></html>`
  );
}
