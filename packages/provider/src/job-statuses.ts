// The job statuses each OpenAI-dialect provider reports, and what each means for us. OpenAI's own
// statuses pass through; Azure OpenAI adds `pending` (accepted, not yet queued) and `paused`.
import type { ProviderJob } from './profile.ts';
import { UnknownProviderStatusError } from './together-profile.ts';

const OPENAI_STATUSES = [
  'validating_files',
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
] as const;

/** Azure OpenAI's fine-tuning job statuses and the OpenAI-shaped status the stages read. */
export const AZURE_JOB_STATUSES = {
  ...Object.fromEntries(OPENAI_STATUSES.map((s) => [s, s])),
  pending: 'queued',
  paused: 'paused',
} as Readonly<Record<string, string>>;

/** Azure's job status as the stages read it; a status nobody mapped throws instead of being guessed. */
export function azureJobStatus(status: string): string {
  if (!Object.hasOwn(AZURE_JOB_STATUSES, status)) {
    throw new UnknownProviderStatusError(
      `azure: unknown fine-tuning job status "${status}" (known: ${Object.keys(AZURE_JOB_STATUSES).join(', ')}); update the azure profile`,
    );
  }
  return AZURE_JOB_STATUSES[status] as string;
}

/** The job with its status mapped for the profile's kind (only Azure needs it). */
export function normalizeJob(kind: string, job: ProviderJob): ProviderJob {
  if (kind !== 'azure') return job;
  const status = azureJobStatus(job.status);
  return status === job.status ? job : ({ ...job, status } as ProviderJob);
}
