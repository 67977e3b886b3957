import { isQueueName, QUEUE_NAMES, queues } from '@tuneline/contracts';
import { ConfigError } from './config.ts';

/**
 * How the stages a service declares disagree with the queue catalogue (`packages/contracts`, where
 * each queue names its one consumer service): every queue the catalogue gives the service needs
 * exactly one stage, and the service runs no stage for a queue that is not its own.
 */
export function stageCatalogueProblems(service: string, stageQueues: readonly string[]): string[] {
  const problems: string[] = [];
  const own = QUEUE_NAMES.filter((q) => queues[q].consumer === service);
  if (own.length === 0) problems.push('the catalogue names it the consumer of no queue');
  for (const q of own) {
    if (!stageQueues.includes(q))
      problems.push(`the catalogue gives it "${q}", but it declares no stage for it`);
  }
  const seen = new Set<string>();
  for (const q of stageQueues) {
    if (seen.has(q)) {
      problems.push(`it declares a stage for "${q}" more than once`);
      continue;
    }
    seen.add(q);
    if (!isQueueName(q)) problems.push(`it declares a stage for "${q}", a queue the catalogue does not have`);
    else if (queues[q].consumer !== service) {
      problems.push(`it declares a stage for "${q}", which the catalogue gives to "${queues[q].consumer}"`);
    }
  }
  return problems;
}

/** Refuses (a ConfigError: restarting cannot fix it) a service whose stages disagree with the catalogue. */
export function assertStagesMatchCatalogue(service: string, stageQueues: readonly string[]): void {
  const problems = stageCatalogueProblems(service, stageQueues);
  if (problems.length) {
    throw new ConfigError(
      `service "${service}" does not match the queue catalogue (packages/contracts/src/queues.ts): ${problems.join('; ')}`,
    );
  }
}
