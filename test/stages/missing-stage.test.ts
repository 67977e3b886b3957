import { billingStage } from '@tuneline/billing';
import type { QueueName } from '@tuneline/contracts';
import { describe, expect } from 'vitest';
import { test } from '../support/fixtures.ts';
import { quietLog, startPipeline, tempStorage } from './harness.ts';
import { makeProvider } from './provider.ts';

/**
 * A chain with a stage missing fails at once, naming what is missing, instead of stalling until a wait
 * times out (which is what optional chaining over the started stages did).
 */
/** A request's way through the stages (a list of its own, so the catalogue can grow). */
const CHAIN: QueueName[] = [
  'fine-tune-requests',
  'files-upload',
  'finetune-create',
  'finetune-poll',
  'billing-settle',
  'notify-send',
];

describe('a missing stage', () => {
  test('the stage runner names the queues nobody consumes', async ({ db, stages }) => {
    await stages.start(billingStage, { db, log: quietLog }, { timers: false });
    expect(() => stages.requireConsumers(CHAIN)).toThrow(
      'no stage consumes fine-tune-requests, files-upload, finetune-create, finetune-poll, notify-send here ' +
        '(running: billing-settle)',
    );
    expect(() => stages.consumer('notify-send')).toThrow(
      'no stage consumes notify-send here (running: billing-settle)',
    );
    expect(stages.consumer('billing-settle')).toBeDefined();
    expect(() => stages.requireConsumers(['billing-settle'])).not.toThrow();
  });

  test('a pipeline names the stage it did not start', async ({ db, stages }) => {
    const files = tempStorage();
    try {
      const pipeline = await startPipeline({
        db,
        runner: stages,
        // Never called: nothing is queued here.
        provider: makeProvider({ baseURL: 'http://127.0.0.1:9/v1', apiKey: 'unused' }),
        storage: files.storage,
        stages: ['trainer'],
      });
      expect(() => pipeline.stage('uploader')).toThrow(
        'the uploader stage was not started in this pipeline (started: trainer)',
      );
      expect(pipeline.stage('trainer')).toBe(pipeline.stages.trainer);
    } finally {
      files.cleanup();
    }
  });
});
