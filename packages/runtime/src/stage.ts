import { type MessageOf, type QueueName, queues, type ServiceName } from '@tuneline/contracts';
import type { Db, OutboxMessage } from '@tuneline/db';
import type { Logger } from './logger.ts';

export interface JobContext {
  queue: QueueName;
  jobId: string;
  /** 1 on the first try. */
  attempt: number;
  correlationId: string;
  log: Logger;
}

/** Shared by every stage's handler: the database and the logger, plus the stage's own dependencies. */
export interface StageDeps {
  db: Db;
  log: Logger;
}

/**
 * One stage of the pipeline: the queue it consumes, its handler, and how to find, in Postgres, the
 * work waiting on it (so a Redis that lost its data is refilled).
 */
export interface Stage<Q extends QueueName, D extends StageDeps = StageDeps> {
  service: ServiceName;
  queue: Q;
  handle(message: MessageOf<Q>, ctx: JobContext, deps: D): Promise<void>;
  /** Messages for every row waiting on this stage; published with their deterministic job ids. */
  recover?(deps: D): Promise<OutboxMessage[]>;
}

export function defineStage<Q extends QueueName, D extends StageDeps>(stage: Stage<Q, D>): Stage<Q, D> {
  if (queues[stage.queue].consumer !== stage.service) {
    throw new Error(
      `service "${stage.service}" cannot consume "${stage.queue}": the catalogue gives it to "${queues[stage.queue].consumer}"`,
    );
  }
  return stage;
}
