import type { MessageOf, QueueName } from '@tuneline/contracts';
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
 * work waiting on it (so a Redis that lost its data is refilled). Which service runs it is the queue
 * catalogue's word (`queues[queue].consumer`), checked when the service starts.
 */
export interface Stage<Q extends QueueName, D extends StageDeps = StageDeps> {
  queue: Q;
  handle(message: MessageOf<Q>, ctx: JobContext, deps: D): Promise<void>;
  /** Messages for every row waiting on this stage; published with their deterministic job ids. */
  recover?(deps: D): Promise<OutboxMessage[]>;
}

/** Types a stage's handler against its queue's message. */
export function defineStage<Q extends QueueName, D extends StageDeps>(stage: Stage<Q, D>): Stage<Q, D> {
  return stage;
}
