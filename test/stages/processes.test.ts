import { freePort } from '@tuneline/devstack';
import { type SmtpTestServer, startSmtpServer } from '@tuneline/harness';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import {
  availableFineTune,
  enqueueRequest,
  mailTo,
  type StorageFixture,
  seedLicense,
  tempStorage,
} from './harness.ts';
import { superviseWorkers, type WorkerProcesses } from './workers.ts';

const SECRET = `whsec_${Buffer.from('tuneline-process-test-secret-32b').toString('base64')}`;

let sim: RunningSimulator;
let files: StorageFixture;
let smtp: SmtpTestServer;
let workers: WorkerProcesses;

test.beforeAll(async ({ database, prefix }) => {
  files = tempStorage();
  smtp = await startSmtpServer();
  const webhookPort = await freePort();
  sim = await startSimulator({
    port: 0,
    seed: 71,
    speed: 1_000,
    webhookUrl: `http://127.0.0.1:${webhookPort}/webhooks/provider`,
    webhookSecret: SECRET,
  });
  workers = superviseWorkers({
    databaseUrl: database.url,
    prefix,
    sim,
    env: {
      STORAGE_DIR: files.dir,
      PROVIDER_WEBHOOK_SECRET: SECRET,
      WEBHOOK_PORT: String(webhookPort),
      POLL_INTERVAL_MS: '1000',
      POLL_MIN_INTERVAL_MS: '250',
      POLL_SWEEP_MAX_AGE_MS: '200',
      SMTP_URL: smtp.url,
    },
  });
});

afterAll(async () => {
  await workers?.stop();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
});

describe('six workers as separate processes', () => {
  test('take an autoTrain request from the queue to an available model and an e-mail', {
    timeout: 240_000,
  }, async ({ db, redis, prefix }) => {
    await seedLicense(db, 'lic-procs', 1_000_000n);
    await enqueueRequest(
      { redis, prefix },
      requestInput({
        requestId: 'procs-1',
        licenseId: 'lic-procs',
        autoTrain: true,
        job: { description: 'processes', notifyEmails: 'team@example.com', hyperparameters: 'auto' },
      }),
    );
    await workers.explained(async () => {
      const fineTune = await availableFineTune(db, 'lic-procs', 200_000, 'an available model');
      expect(fineTune.status).toBe('succeeded');
      const mail = await mailTo(smtp, 'team@example.com', 20_000);
      expect(mail.body).toContain(fineTune.fine_tuned_model ?? 'no model');
      expect(sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTune.id)).toHaveLength(1);
      // The poller process serves the provider's webhooks (started through runService's onStarted).
      await waitFor(
        async () =>
          db
            .selectFrom('webhook_deliveries')
            .selectAll()
            .where('event_type', '=', 'fine_tuning.job.succeeded')
            .executeTakeFirst(),
        20_000,
        'the webhook delivery, received by the poller process',
      );
      expect(workers.supervisor.processes.map((p) => p.service).sort()).toEqual([
        'billing',
        'dataset-builder',
        'evaluator',
        'notifier',
        'poller',
        'trainer',
        'uploader',
      ]);
    });
  });
});
