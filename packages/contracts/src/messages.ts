import { createHash } from 'node:crypto';
import type { FineTuneRequestInput } from './fine-tune-request.ts';
import { type MessageInput, type QueueName, SCHEMA_VERSION } from './queues.ts';

/**
 * Every message a stage publishes, with its job id: one builder per queue (one per kind of poll), and
 * the job-id rules they use. Producers, stages, the outbox and tests build messages only here.
 *
 * Job ids are deterministic, so a repeated hand-over (a retry, the recovery sweep, a relay after a
 * crash) collapses onto one BullMQ job. They never contain ':' (BullMQ's key separator), and they are
 * unambiguous: two different subjects never share a job id, whatever ids the schemas allow.
 */

/** A message ready to publish: its queue, its deterministic job id and its payload. */
export interface OutboxMessage<Q extends QueueName = QueueName> {
  queue: Q;
  jobId: string;
  payload: MessageInput<Q>;
  /** Publish with this delay (e.g. the next poll). */
  delayMs?: number;
}

// ---------------------------------------------------------------------------------------------------
// Job ids

function queueJobId(queue: QueueName, rest: string): string {
  const id = `${queue}-${rest}`;
  if (id.includes(':')) throw new Error(`job id "${id}" must not contain ':'`);
  return id;
}

/** The alphabet of `idString` (contracts' ids): what a license id may contain. */
const ID_ALPHABET = /^[A-Za-z0-9._-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function assertUuid(what: string, id: string): void {
  if (!UUID.test(id)) throw new Error(`${what} "${id}" must be a UUID to be part of a job id`);
}

/** One per dataset: `files-upload-<datasetId>`. */
export const filesUploadJobId = (datasetId: string): string => queueJobId('files-upload', datasetId);
/** One per fine-tune: `finetune-create-<fineTuneId>`. */
export const fineTuneCreateJobId = (fineTuneId: string): string => queueJobId('finetune-create', fineTuneId);
/** One per fine-tune: `billing-settle-<fineTuneId>`. */
export const billingSettleJobId = (fineTuneId: string): string => queueJobId('billing-settle', fineTuneId);
/** One per fine-tune: `evaluate-<fineTuneId>` (a fine-tune has at most one evaluation run). */
export const evaluateJobId = (fineTuneId: string): string => queueJobId('evaluate', fineTuneId);
/** One per notification: `notify-send-<notificationId>`. */
export const notifySendJobId = (notificationId: string): string => queueJobId('notify-send', notificationId);

/** One per gateway call whose settlement was deferred: `inference-usage-<callId>`. */
export function inferenceUsageJobId(callId: string): string {
  assertUuid('callId', callId);
  return queueJobId('inference-usage', callId);
}

/**
 * One per (license, upstream request id): `fine-tune-requests-<licenseId>~<requestId>`. Both ids may
 * contain '-', so joining them with '-' let license `X` + request `eu-1` and license `X-eu` + request
 * `1` share a job (and the second tenant saw the first one's request). A license id never contains
 * '~' (the `idString` alphabet), so the first '~' ends it. Ids of the old `<license>-<request>` form
 * never contain '~' either, so no new id can meet an old one still in Redis after an upgrade.
 */
export function requestJobId(licenseId: string, requestId: string): string {
  if (!ID_ALPHABET.test(licenseId)) {
    throw new Error(`licenseId "${licenseId}" may only contain letters, digits, '.', '_' and '-'`);
  }
  if (requestId.length === 0) throw new Error('requestId must not be empty');
  return queueJobId('fine-tune-requests', `${licenseId}~${requestId}`);
}

/**
 * The scheduled poll number `pollCount` of a fine-tune: `finetune-poll-<fineTuneId>-<n>`. One per
 * link, so a chain never forks. Fine-tune ids are UUIDs (fixed length), so the parts cannot run into
 * each other, nor into the cancel and webhook polls below.
 */
export function scheduledPollJobId(fineTuneId: string, pollCount: number): string {
  assertUuid('fineTuneId', fineTuneId);
  if (!Number.isSafeInteger(pollCount) || pollCount < 0) {
    throw new Error(`pollCount must be a non-negative integer (got ${pollCount})`);
  }
  return queueJobId('finetune-poll', `${fineTuneId}-${pollCount}`);
}

/** The poll that cancels a fine-tune's provider job: one per fine-tune. */
export function cancelPollJobId(fineTuneId: string): string {
  assertUuid('fineTuneId', fineTuneId);
  return queueJobId('finetune-poll', `${fineTuneId}-cancel`);
}

/** Link `step` of a model deployment's follow chain: `model-deployment-<deploymentId>-<step>`. */
export function modelDeploymentJobId(deploymentId: string, step: number): string {
  assertUuid('deploymentId', deploymentId);
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new Error(`step must be a non-negative integer (got ${step})`);
  }
  return queueJobId('model-deployment', `${deploymentId}-${step}`);
}

const READABLE_WEBHOOK_ID = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * The immediate poll one webhook delivery asks for: one per (fine-tune, `webhook-id`). A delivery id
 * that is short and plain (`msg_2Lh…`, the usual) is kept as it is; any other is replaced by a hash
 * after a '~', which a kept id never contains, so two deliveries never share a poll.
 */
export function webhookPollJobId(fineTuneId: string, webhookId: string): string {
  assertUuid('fineTuneId', fineTuneId);
  const part = READABLE_WEBHOOK_ID.test(webhookId)
    ? webhookId
    : `~${createHash('sha256').update(webhookId).digest('hex').slice(0, 32)}`;
  return queueJobId('finetune-poll', `${fineTuneId}-webhook-${part}`);
}

// ---------------------------------------------------------------------------------------------------
// Messages

type Fields<Q extends QueueName> = Omit<MessageInput<Q>, 'schemaVersion'>;

/** The envelope around a queue's fields. Builders name each field, so nothing else slips into a payload. */
function message<Q extends QueueName>(
  queue: Q,
  jobId: string,
  fields: Fields<Q>,
  delayMs?: number,
): OutboxMessage<Q> {
  return {
    queue,
    jobId,
    payload: { schemaVersion: SCHEMA_VERSION, ...fields } as MessageInput<Q>,
    ...(delayMs !== undefined ? { delayMs } : {}),
  };
}

/** An upstream request (the one queue whose message carries state rather than ids). */
export function fineTuneRequestMessage({
  request,
  correlationId,
}: {
  request: FineTuneRequestInput;
  correlationId: string;
}): OutboxMessage<'fine-tune-requests'> {
  return message('fine-tune-requests', requestJobId(request.licenseId, request.requestId), {
    correlationId,
    request,
  });
}

/** Upload a dataset's files (the uploader). */
export function filesUploadMessage({ datasetId, correlationId }: Fields<'files-upload'>) {
  return message('files-upload', filesUploadJobId(datasetId), { correlationId, datasetId });
}

/** Reserve credits and create the provider job of a fine-tune (the trainer). */
export function fineTuneCreateMessage({ fineTuneId, correlationId }: Fields<'finetune-create'>) {
  return message('finetune-create', fineTuneCreateJobId(fineTuneId), { correlationId, fineTuneId });
}

/** Settle a finished fine-tune: charge or release its credits, then notify (billing). */
export function billingSettleMessage({ fineTuneId, correlationId }: Fields<'billing-settle'>) {
  return message('billing-settle', billingSettleJobId(fineTuneId), { correlationId, fineTuneId });
}

/** Evaluate a settled fine-tune on its testing file, then notify (the evaluator). */
export function evaluateMessage({ fineTuneId, correlationId }: Fields<'evaluate'>) {
  return message('evaluate', evaluateJobId(fineTuneId), { correlationId, fineTuneId });
}

/** Send one notification e-mail (the notifier). */
export function notifySendMessage({ notificationId, correlationId }: Fields<'notify-send'>) {
  return message('notify-send', notifySendJobId(notificationId), { correlationId, notificationId });
}

/** Apply a gateway call's deferred usage to the ledger, exactly once (billing). */
export function inferenceUsageMessage({ callId, correlationId }: Fields<'inference-usage'>) {
  return message('inference-usage', inferenceUsageJobId(callId), { correlationId, callId });
}

/**
 * Link `step` of a deployment's follow chain (the poller): the first at activation, each next one
 * `delayMs` later while the provider provisions, one at once when deactivation asks for the deletion.
 */
export function modelDeploymentMessage({
  deploymentId,
  fineTuneId,
  correlationId,
  step,
  delayMs,
}: Fields<'model-deployment'> & { delayMs?: number }) {
  return message(
    'model-deployment',
    modelDeploymentJobId(deploymentId, step),
    { correlationId, deploymentId, fineTuneId, step },
    delayMs,
  );
}

type PollInput = { fineTuneId: string; correlationId: string };

/**
 * A link of a fine-tune's poll chain (`scheduled`), or the same link re-added by a recovery sweep
 * (`recovery`): both use the link's job id, so a re-add collapses with the link still in Redis.
 */
export function scheduledPollMessage({
  fineTuneId,
  correlationId,
  pollCount,
  delayMs,
  reason = 'scheduled',
}: PollInput & { pollCount: number; delayMs?: number; reason?: 'scheduled' | 'recovery' }) {
  const jobId = scheduledPollJobId(fineTuneId, pollCount);
  return message('finetune-poll', jobId, { correlationId, fineTuneId, reason }, delayMs);
}

/** A poll at once because a verified webhook delivery said the job changed. */
export function webhookPollMessage({
  fineTuneId,
  correlationId,
  webhookId,
}: PollInput & { webhookId: string }) {
  const jobId = webhookPollJobId(fineTuneId, webhookId);
  return message('finetune-poll', jobId, { correlationId, fineTuneId, reason: 'webhook' });
}

/** The poll that cancels the provider job of a fine-tune whose cancellation was asked for. */
export function cancelPollMessage({ fineTuneId, correlationId }: PollInput) {
  return message('finetune-poll', cancelPollJobId(fineTuneId), {
    correlationId,
    fineTuneId,
    reason: 'cancel',
  });
}

/**
 * Check one training profile at once (`trigger: 'manual'`, the API's re-train call): one job per call,
 * named by its correlation id. The scheduler's periodic check of every profile is a BullMQ job
 * scheduler (`RETRAIN_SCHEDULER_ID`), whose job ids BullMQ makes.
 */
export function retrainCheckMessage({
  profileId,
  correlationId,
}: {
  profileId: string;
  correlationId: string;
}) {
  assertUuid('profileId', profileId);
  return message('retrain-check', queueJobId('retrain-check', `${profileId}-${correlationId}`), {
    correlationId,
    profileId,
    trigger: 'manual',
  });
}

/** The one job scheduler that runs the lifecycle sweep periodically (issue 21.3). */
export const LIFECYCLE_SWEEP_SCHEDULER_ID = 'lifecycle-sweep-every-model';

/** The lifecycle sweep scheduler's message (BullMQ makes its job ids). */
export const lifecycleSweepSchedulerPayload = (): MessageInput<'lifecycle-sweep'> => ({
  schemaVersion: SCHEMA_VERSION,
  correlationId: LIFECYCLE_SWEEP_SCHEDULER_ID,
});

/** The one job scheduler that runs the deployment sweep periodically (issue 20.1). */
export const DEPLOYMENT_SWEEP_SCHEDULER_ID = 'deployment-sweep-every-deployment';

/** The deployment sweep scheduler's message (BullMQ makes its job ids). */
export const deploymentSweepSchedulerPayload = (): MessageInput<'deployment-sweep'> => ({
  schemaVersion: SCHEMA_VERSION,
  correlationId: DEPLOYMENT_SWEEP_SCHEDULER_ID,
});

/** The one job scheduler that checks every enabled training profile periodically. */
export const RETRAIN_SCHEDULER_ID = 'retrain-check-every-profile';

/** The scheduler's message: check every enabled profile. */
export const retrainSchedulerPayload = (): MessageInput<'retrain-check'> => ({
  schemaVersion: SCHEMA_VERSION,
  correlationId: RETRAIN_SCHEDULER_ID,
  trigger: 'policy',
});
