import type { QueueName } from '@tuneline/contracts';
import type { DeadLetterSubjectKind } from '@tuneline/db';

/** The row a queued message works on: what a dead letter names and where its license comes from. */
export interface MessageSubject {
  kind: DeadLetterSubjectKind;
  id: string;
  licenseId?: string;
}

/** Reads the subject of a message of the catalogue (ids only: every message carries its row's id). */
export function messageSubject(queue: QueueName, payload: unknown): MessageSubject {
  const p = (payload ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  switch (queue) {
    case 'fine-tune-requests': {
      const request = (p.request ?? {}) as Record<string, unknown>;
      return { kind: 'request', id: str(request.requestId), licenseId: str(request.licenseId) || undefined };
    }
    case 'files-upload':
      return { kind: 'dataset', id: str(p.datasetId) };
    case 'notify-send':
      return { kind: 'notification', id: str(p.notificationId) };
    default:
      return { kind: 'fine_tune', id: str(p.fineTuneId) };
  }
}
