import { join } from 'node:path';
import { FineTuneRequestProducer } from '@tuneline/contracts';
import { freePort, readServiceManifests, type Supervisor, superviseServices } from '@tuneline/devstack';
import { startSmtpServer } from '@tuneline/harness';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type StorageFixture, seedLicense, tempStorage } from './harness.ts';

const root = join(import.meta.dirname, '..', '..');
const SECRET = `whsec_${Buffer.from('tuneline-process-test-secret-32b').toString('base64')}`;

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let supervisor: Supervisor | undefined;
let redis: Redis;
let prefix: string;
const output: string[] = [];

test.beforeAll(async ({ database, redis: client, prefix: ownPrefix }) => {
  tdb = database;
  redis = client;
  prefix = ownPrefix;
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
  supervisor = superviseServices({
    root,
    manifests: readServiceManifests(root),
    env: {
      ...process.env,
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      STORAGE_DIR: files.dir,
      PROVIDER: 'simulator',
      SIMULATOR_URL: sim.url,
      SIMULATOR_API_KEY: sim.apiKey,
      PROVIDER_WEBHOOK_SECRET: SECRET,
      WEBHOOK_PORT: String(webhookPort),
      POLL_INTERVAL_MS: '1000',
      POLL_MIN_INTERVAL_MS: '250',
      POLL_SWEEP_MAX_AGE_MS: '200',
      SMTP_URL: smtp.url,
      OUTBOX_INTERVAL_MS: '100',
    },
    basePort: 0,
    restart: false,
    onOutput: (service, chunk) => output.push(`[${service}] ${chunk}`),
  });
});

afterAll(async () => {
  await supervisor?.stop(10_000);
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
});

describe('six workers as separate processes', () => {
  it('take an autoTrain request from the queue to an available model and an e-mail', {
    timeout: 240_000,
  }, async () => {
    await seedLicense(tdb.db, 'lic-procs', 1_000_000n);
    const producer = new FineTuneRequestProducer({ connection: redis, prefix });
    await producer.enqueue(
      requestInput({
        requestId: 'procs-1',
        licenseId: 'lic-procs',
        autoTrain: true,
        job: { description: 'processes', notifyEmails: 'team@example.com', hyperparameters: 'auto' },
      }),
    );
    await producer.close();
    try {
      const fineTune = await waitFor(
        async () =>
          tdb.db
            .selectFrom('fine_tunes')
            .selectAll()
            .where('license_id', '=', 'lic-procs')
            .where('available', '=', true)
            .executeTakeFirst(),
        200_000,
        'an available model',
      );
      expect(fineTune.status).toBe('succeeded');
      const mail = await waitFor(
        async () => smtp.received.find((m) => m.to.includes('team@example.com')),
        20_000,
        'the e-mail',
      );
      expect(mail.body).toContain(fineTune.fine_tuned_model ?? 'no model');
      expect(sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTune.id)).toHaveLength(1);
      // The poller process serves the provider's webhooks (started through runService's onStarted).
      await waitFor(
        async () =>
          tdb.db
            .selectFrom('webhook_deliveries')
            .selectAll()
            .where('event_type', '=', 'fine_tuning.job.succeeded')
            .executeTakeFirst(),
        20_000,
        'the webhook delivery, received by the poller process',
      );
      expect(supervisor?.processes.map((p) => p.service).sort()).toEqual([
        'billing',
        'dataset-builder',
        'evaluator',
        'notifier',
        'poller',
        'trainer',
        'uploader',
      ]);
    } catch (err) {
      console.error(output.join('').slice(-4_000));
      throw err;
    }
  });
});
