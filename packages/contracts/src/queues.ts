import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import { fineTuneRequestSchema } from './fine-tune-request.ts';

/**
 * The queue catalogue: one entry per queue with its name, message schema, default job options and the
 * one service that consumes it. Every producer and consumer goes through this table; the messages
 * themselves, with their job ids, are built in messages.ts.
 */

export const SCHEMA_VERSION = 1 as const;

/** Every message: a schema version, the upstream request's correlation id, then ids only. */
const envelope = <T extends z.ZodRawShape>(shape: T) =>
  z
    .object({
      schemaVersion: z.literal(SCHEMA_VERSION),
      correlationId: z.string().min(1).max(200),
      ...shape,
    })
    .strict();

const uuid = z.uuid();

export const fineTuneRequestMessageSchema = envelope({ request: fineTuneRequestSchema });
export const filesUploadMessageSchema = envelope({ datasetId: uuid });
export const fineTuneCreateMessageSchema = envelope({ fineTuneId: uuid });
export const fineTunePollMessageSchema = envelope({
  fineTuneId: uuid,
  /** Why this poll was queued: scheduled, a webhook said the job changed, or a recovery sweep. */
  reason: z.enum(['scheduled', 'webhook', 'recovery', 'cancel']).default('scheduled'),
});
export const billingSettleMessageSchema = envelope({ fineTuneId: uuid });
/** Evaluate a settled fine-tune on its testing file (one run per fine-tune). */
export const evaluateMessageSchema = envelope({ fineTuneId: uuid });
export const notifySendMessageSchema = envelope({ notificationId: uuid });
/** Check training profiles against their policies: every enabled one (the scheduler), or one. */
export const retrainCheckMessageSchema = envelope({
  profileId: uuid.optional(),
  trigger: z.enum(['policy', 'manual']).default('policy'),
});
/** Run the lifecycle sweep (issue 21.3): record the warnings due by the clock and e-mail them. */
export const lifecycleSweepMessageSchema = envelope({});
/**
 * One link of a model deployment's follow chain (issue 20.1): create the deployment at the provider, read
 * its provisioning state until it serves or failed, or delete it. `step` is the link's number: a link
 * older than the row's current one returns without acting, so a chain never forks.
 */
export const modelDeploymentMessageSchema = envelope({
  deploymentId: uuid,
  fineTuneId: uuid,
  step: z.int().min(0),
});
/** Run the deployment sweep: notice deployments the provider deleted (Azure: idle), charge hosting hours. */
export const deploymentSweepMessageSchema = envelope({});
/** A gateway call whose settlement failed after the provider answered (row in inference_pending_usage). */
export const inferenceUsageMessageSchema = envelope({ callId: uuid });

/** Exponential backoff with jitter; attempts bounded; finished jobs kept long enough to debug. */
const defaultJobOptions = (attempts: number, delayMs: number): JobsOptions => ({
  attempts,
  backoff: { type: 'exponential', delay: delayMs, jitter: 0.5 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
});

interface QueueDefinition<S extends z.ZodType, C extends string> {
  name: string;
  schema: S;
  /**
   * The one service that consumes this queue: its folder under services/ and the `service` its
   * main.ts gives runService. The list of services is derived from these names.
   */
  consumer: C;
  jobOptions: JobsOptions;
}

const define = <S extends z.ZodType, C extends string>(def: QueueDefinition<S, C>) => def;

export const queues = {
  'fine-tune-requests': define({
    name: 'fine-tune-requests',
    schema: fineTuneRequestMessageSchema,
    consumer: 'dataset-builder',
    jobOptions: defaultJobOptions(8, 2_000),
  }),
  'files-upload': define({
    name: 'files-upload',
    schema: filesUploadMessageSchema,
    consumer: 'uploader',
    jobOptions: defaultJobOptions(10, 2_000),
  }),
  'finetune-create': define({
    name: 'finetune-create',
    schema: fineTuneCreateMessageSchema,
    consumer: 'trainer',
    jobOptions: defaultJobOptions(10, 2_000),
  }),
  'finetune-poll': define({
    name: 'finetune-poll',
    schema: fineTunePollMessageSchema,
    consumer: 'poller',
    jobOptions: defaultJobOptions(10, 5_000),
  }),
  'billing-settle': define({
    name: 'billing-settle',
    schema: billingSettleMessageSchema,
    consumer: 'billing',
    jobOptions: defaultJobOptions(12, 1_000),
  }),
  evaluate: define({
    name: 'evaluate',
    schema: evaluateMessageSchema,
    consumer: 'evaluator',
    jobOptions: defaultJobOptions(10, 2_000),
  }),
  'notify-send': define({
    name: 'notify-send',
    schema: notifySendMessageSchema,
    consumer: 'notifier',
    jobOptions: defaultJobOptions(8, 5_000),
  }),
  'retrain-check': define({
    name: 'retrain-check',
    schema: retrainCheckMessageSchema,
    // The documents' stage: a check reads the store and queues a fine-tune request it then builds.
    consumer: 'dataset-builder',
    jobOptions: defaultJobOptions(5, 5_000),
  }),
  'lifecycle-sweep': define({
    name: 'lifecycle-sweep',
    schema: lifecycleSweepMessageSchema,
    // The notifier sends e-mail: the warnings are e-mails. A sweep is idempotent (Postgres keys).
    consumer: 'notifier',
    jobOptions: defaultJobOptions(3, 60_000),
  }),
  'model-deployment': define({
    name: 'model-deployment',
    schema: modelDeploymentMessageSchema,
    // The poller follows the provider's long-running state: jobs, and deployments the same way.
    consumer: 'poller',
    jobOptions: defaultJobOptions(10, 5_000),
  }),
  'deployment-sweep': define({
    name: 'deployment-sweep',
    schema: deploymentSweepMessageSchema,
    // Idempotent: a deployment ends once (state check), an hour is charged once (ledger key).
    consumer: 'poller',
    jobOptions: defaultJobOptions(3, 60_000),
  }),
  'inference-usage': define({
    name: 'inference-usage',
    schema: inferenceUsageMessageSchema,
    consumer: 'billing',
    jobOptions: defaultJobOptions(20, 1_000),
  }),
} as const;

export type Queues = typeof queues;
export type QueueName = keyof Queues;
export type MessageOf<Q extends QueueName> = z.output<Queues[Q]['schema']>;
export type MessageInput<Q extends QueueName> = z.input<Queues[Q]['schema']>;

export const QUEUE_NAMES = Object.keys(queues) as QueueName[];

/** A service that consumes a queue of the catalogue. */
export type ServiceName = Queues[QueueName]['consumer'];
/** Every consumer of the catalogue, in pipeline order, each once. */
export const SERVICES: readonly ServiceName[] = [...new Set(QUEUE_NAMES.map((q) => queues[q].consumer))];

export function isQueueName(name: string): name is QueueName {
  return Object.hasOwn(queues, name);
}
