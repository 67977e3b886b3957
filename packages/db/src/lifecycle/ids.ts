import { deterministicUuid } from '../repositories/fine-tunes.ts';

/** The fine-tune an auto-train dataset gets: derived from the dataset, so the uploader creates one. */
export function autoTrainFineTuneId(datasetId: string): string {
  return deterministicUuid(`tuneline/auto-train/${datasetId}`);
}

/** The fine-tune the API creates for (dataset, idempotency key): the same key gives the same one. */
export function requestedFineTuneId(datasetId: string, idempotencyKey: string): string {
  return deterministicUuid(`tuneline/api-fine-tune/${datasetId}/${idempotencyKey}`);
}
