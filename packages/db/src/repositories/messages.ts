import { jobId, type MessageInput } from '@tuneline/contracts';
import type { OutboxMessage } from './outbox.ts';

/**
 * The messages that hand a row on to its next stage, each under the catalogue's deterministic job id,
 * so a repeated hand-over (a retry, the recovery sweep, a relay after a crash) collapses onto one job.
 */

/** A row named in a message: its id and the upstream request's correlation id. */
export interface MessageSubject {
  id: string;
  correlation_id: string;
}

export function uploadFilesMessage(dataset: MessageSubject): OutboxMessage<'files-upload'> {
  return {
    queue: 'files-upload',
    jobId: jobId('files-upload', dataset.id),
    payload: { schemaVersion: 1, correlationId: dataset.correlation_id, datasetId: dataset.id },
  };
}

export function createJobMessage(fineTune: MessageSubject): OutboxMessage<'finetune-create'> {
  return {
    queue: 'finetune-create',
    jobId: jobId('finetune-create', fineTune.id),
    payload: { schemaVersion: 1, correlationId: fineTune.correlation_id, fineTuneId: fineTune.id },
  };
}

export function settleMessage(fineTune: MessageSubject): OutboxMessage<'billing-settle'> {
  return {
    queue: 'billing-settle',
    jobId: jobId('billing-settle', fineTune.id),
    payload: { schemaVersion: 1, correlationId: fineTune.correlation_id, fineTuneId: fineTune.id },
  };
}

/** A poll of the fine-tune's provider job; which job id depends on why (see the poll job-id rules). */
export function pollMessage(
  fineTune: MessageSubject,
  reason: NonNullable<MessageInput<'finetune-poll'>['reason']>,
  pollJobId: string,
  delayMs?: number,
): OutboxMessage<'finetune-poll'> {
  return {
    queue: 'finetune-poll',
    jobId: pollJobId,
    payload: { schemaVersion: 1, correlationId: fineTune.correlation_id, fineTuneId: fineTune.id, reason },
    ...(delayMs !== undefined ? { delayMs } : {}),
  };
}
