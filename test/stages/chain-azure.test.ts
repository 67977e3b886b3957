// Azure end to end (issue 20.1): the whole pipeline with the azure profile against the simulator over
// HTTP (request → dataset → upload → job → poll → settle → e-mail), then activation deploys the model
// through ARM (@azure/arm-cognitiveservices; deploying → active), the gateway serves it by deployment
// name, deactivation deletes the deployment, hosting hours are charged once per started hour however
// often the sweep runs, and Azure's idle deletion leaves the model inactive with the reason and one e-mail.
import { buildApi, profileChatProvider } from '@tuneline/api';
import {
  type Clock,
  deploymentSweepSchedulerPayload,
  FineTuneRequestProducer,
  fixedClock,
  queues,
} from '@tuneline/contracts';
import { defaultCatalogue } from '@tuneline/dataset';
import { type Db, deploymentFollowMessage, setLicenseProvider, startDeployment } from '@tuneline/db';
import { startSmtpServer } from '@tuneline/harness';
import { auditLedger, getBalance } from '@tuneline/ledger';
import {
  DEPLOYMENT_GONE_REASON,
  type DeploymentDeps,
  deploymentSweepStage,
  modelDeploymentStage,
  runDeploymentSweep,
} from '@tuneline/poller';
import { azureDeploymentName, createProvider, providerEnvSchema } from '@tuneline/provider';
import { createRedis } from '@tuneline/runtime';
import { type RecordedResponse, type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import type { AnyJson } from '../api/support.ts';
import { requestInput } from '../dataset/fixtures.ts';
import { redisUrl, waitFor } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import {
  availableFineTune,
  quietLog,
  type StorageFixture,
  startOuterStages,
  startPipeline,
  startSimulatorDeployments,
  tempStorage,
} from './harness.ts';

const HOUR = 3_600_000;
const LICENSE = 'lic-azure';
const OWNER = 'owner@example.com';

let sim: RunningSimulator;
let files: StorageFixture;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let redis: Redis;
let app: Awaited<ReturnType<typeof buildApi>>;
let gatewayUrl: string;
let key: string;
let clock: Clock & { set(at: Date | string): void };
let deps: DeploymentDeps;
const t0 = new Date();
const jobsCreated: RecordedResponse[] = [];

test.beforeAll(async ({ db, stages, prefix }) => {
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({
    port: 0,
    seed: 71,
    speed: 2_000,
    onResponse: (r) => {
      if (r.method === 'POST' && r.url.split('?')[0]?.endsWith('fine_tuning/jobs')) jobsCreated.push(r);
    },
  });
  const azure = createProvider(
    providerEnvSchema.parse({
      PROVIDER: 'azure',
      AZURE_OPENAI_ENDPOINT: sim.baseUrl,
      AZURE_OPENAI_API_KEY: sim.apiKey,
    }),
  );
  await startPipeline({
    db,
    runner: stages,
    provider: azure,
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await startOuterStages(stages, { db, storage: files.storage, provider: azure, smtpUrl: smtp.url });
  // One clock for the API (a deployment's creation) and the poller (active, ended, hosting hours).
  clock = fixedClock(t0);
  // No real credentials: ARM is the simulator's, as the poller's main.ts finds it.
  deps = await startSimulatorDeployments(stages, db, sim, clock);
  await stages.start(deploymentSweepStage, deps);
  redis = createRedis(redisUrl(), 'producer');
  app = await buildApi({
    db,
    redis,
    queuePrefix: prefix,
    catalogue: defaultCatalogue,
    provider: profileChatProvider(azure),
    deployments: { defaultProvider: 'simulator' },
    clock,
  });
  gatewayUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  ({ key } = await makeLicense(db, LICENSE, 1_000_000n));
  await setLicenseProvider(db, LICENSE, 'azure');
});

afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
});

async function call(method: 'GET' | 'POST', url: string, licenseKey = key) {
  const res = await fetch(`${gatewayUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${licenseKey}` },
  });
  return { status: res.status, json: (await res.json()) as AnyJson };
}

const view = async (id: string) => (await call('GET', `/v1/fine-tunes/${id}`)).json;
/** The fine-tune's view once `ready` holds for it. */
const viewWhen = (id: string, ready: (v: AnyJson) => boolean, what: string) =>
  waitFor(
    async () => {
      const v = await view(id);
      return ready(v) ? v : undefined;
    },
    15_000,
    what,
  );
const hostingCharges = (db: Db) =>
  db
    .selectFrom('ledger_transfers')
    .select(['id', 'amount', 'license_id'])
    .where('kind', '=', 'hosting')
    .orderBy('seq')
    .execute();
const deploymentMails = () => smtp.received.filter((m) => /no longer deployed/.test(m.headers.subject ?? ''));

let fineTuneId: string;
let model: string;

describe('Azure, end to end', () => {
  test('trains through the azure profile: request → dataset → upload → job → poll → settle → e-mail', async ({
    db,
    redis: testRedis,
    prefix,
  }) => {
    const producer = new FineTuneRequestProducer({ connection: testRedis, prefix });
    try {
      const input = requestInput({
        requestId: 'azure-1',
        licenseId: LICENSE,
        autoTrain: true,
        job: { description: 'azure chain', notifyEmails: OWNER, hyperparameters: 'auto' },
      });
      expect((await producer.enqueue(input, { correlationId: 'corr-azure-1' })).ok).toBe(true);
    } finally {
      await producer.close();
    }
    const row = await availableFineTune(db, LICENSE, 30_000, 'the Azure model to become available');
    expect(row.provider).toBe('azure');
    expect(row.status).toBe('succeeded');
    expect(BigInt(row.credits_charged ?? '0')).toBeGreaterThan(0n);
    fineTuneId = row.id;
    model = row.fine_tuned_model as string;
    // One job, created once in Azure's dialect.
    expect(
      jobsCreated.filter((r) => r.status === 200).map((r) => `${r.dialect}:${r.url.split('?')[0]}`),
    ).toEqual(['azure:/openai/fine_tuning/jobs']);
    const mail = await waitFor(async () => smtp.received.find((m) => m.to.includes(OWNER)), 10_000, 'mail');
    expect(mail.raw).toContain(model);
    // Trained, not deployed: inactive, nothing hosted, the fee shown.
    const before = await view(fineTuneId);
    expect(before).toMatchObject({ activation: 'inactive', deployment: null, hostingCreditsPerHour: '1700' });
    expect(sim.admin.azureDeployments()).toEqual([]);
  });

  test('activation deploys the model (deploying → active, one deployment however often asked), the gateway calls it by deployment name, deactivation deletes it', async ({
    db,
  }) => {
    const name = azureDeploymentName(fineTuneId);
    // Asked twice at once: one deployment. The first answer says it is under way; the other the same,
    // unless the deployment already served by then.
    const answers = await Promise.all([
      call('POST', `/v1/fine-tunes/${fineTuneId}/activate`),
      call('POST', `/v1/fine-tunes/${fineTuneId}/activate`),
    ]);
    expect(answers.map((a) => a.json.deployment.name)).toEqual([name, name]);
    expect(answers.map((a) => a.status)).toContain(202);
    for (const answer of answers) {
      expect(`${answer.status} ${answer.json.activation}`).toMatch(/^(202 deploying|200 active)$/);
      expect(answer.json.deployment).toMatchObject({ name, creditsPerHour: '1700' });
    }
    // Activating again later (deploying or serving) is the same deployment.
    const later = await call('POST', `/v1/fine-tunes/${fineTuneId}/activate`);
    expect([200, 202]).toContain(later.status);
    expect(later.json.deployment.name).toBe(name);
    const active = await viewWhen(fineTuneId, (v) => v.activation === 'active', 'the deployment to serve');
    expect(active).toMatchObject({ active: true, deployment: { state: 'active', hoursCharged: 0 } });
    expect(active.deployment.activeAt).toBe(t0.toISOString());
    expect(sim.admin.azureDeployments()).toEqual([{ name, model, provisioningState: 'Succeeded' }]);
    expect(await db.selectFrom('model_deployments').select('id').execute()).toHaveLength(1);

    // The gateway: the caller names the fine-tuned model, Azure is called with the deployment's name.
    const client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: key, maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Document inv-1:\nINVOICE 1001\nTotal: 20.00 EUR' }],
    });
    expect(answer.model).toBe(model);
    // Azure's inference takes the deployment in the URL (the simulator records the model it serves).
    const received = sim.admin.chatRequests().at(-1);
    expect(received).toMatchObject({ dialect: 'azure', model });
    expect(received?.url).toContain(`/openai/deployments/${name}/chat/completions`);

    // Hosting: per started hour since it serves; the sweep run twice charges each hour once.
    clock.set(new Date(t0.getTime() + 2.5 * HOUR));
    expect((await runDeploymentSweep(deps, quietLog)).hours).toBe(3);
    expect((await runDeploymentSweep(deps, quietLog)).hours).toBe(0);
    const { id: deploymentId } = await db
      .selectFrom('model_deployments')
      .select('id')
      .executeTakeFirstOrThrow();
    expect(await hostingCharges(db)).toEqual(
      [0, 1, 2].map((h) => ({ id: `hosting-${deploymentId}-${h}`, amount: '1700', license_id: LICENSE })),
    );
    const usage = (await call('GET', '/v1/credits/usage')).json.data as AnyJson[];
    expect(usage.filter((e) => e.kind === 'hosting').map((e) => e.amount)).toEqual(['1700', '1700', '1700']);

    // Deactivation: serving stops at once, the deployment is deleted, hosting ends there.
    const off = await call('POST', `/v1/fine-tunes/${fineTuneId}/deactivate`);
    expect(off.status).toBe(200);
    expect(off.json).toMatchObject({ active: false, activation: 'deactivating' });
    const gone = await viewWhen(
      fineTuneId,
      (v) => v.deployment.state === 'deleted',
      'the deployment to be deleted',
    );
    expect(gone).toMatchObject({ activation: 'inactive', deployment: { reason: 'deactivated' } });
    expect(sim.admin.azureDeployments()).toEqual([]);
    await expect(
      client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 404 });
    // Ended at 2.5 h: three started hours, whatever the clock says at later sweeps.
    clock.set(new Date(t0.getTime() + 6 * HOUR));
    await runDeploymentSweep(deps, quietLog);
    await runDeploymentSweep(deps, quietLog);
    expect(await hostingCharges(db)).toHaveLength(3);
    expect((await auditLedger(db)).violations).toEqual([]);
  });

  test("Azure's idle deletion: the sweep leaves the model inactive with the reason, and one e-mail", async ({
    db,
  }) => {
    const name = azureDeploymentName(fineTuneId);
    expect((await call('POST', `/v1/fine-tunes/${fineTuneId}/activate`)).status).toBe(202);
    await viewWhen(fineTuneId, (v) => v.activation === 'active', 'active again');
    const before = deploymentMails().length;
    // 15 days without calls: Azure deletes the deployment.
    expect(sim.admin.idleDelete(name)).toBe(true);
    clock.set(new Date(t0.getTime() + 6.5 * HOUR));
    const first = await runDeploymentSweep(deps, quietLog);
    const second = await runDeploymentSweep(deps, quietLog);
    expect([first.ended, second.ended]).toEqual([1, 0]);
    const after = await view(fineTuneId);
    expect(after).toMatchObject({ active: false, activation: 'inactive', deployment: { state: 'deleted' } });
    expect(after.deployment.reason).toMatch(/no longer exists at Azure.*15 days without calls/);
    // One e-mail about it, sent once (a third sweep writes nothing more).
    await waitFor(
      async () =>
        (await db
          .selectFrom('notifications')
          .select('status')
          .where('kind', '=', 'deployment_ended')
          .where('status', '=', 'sent')
          .executeTakeFirst()) ?? undefined,
      10_000,
      'the deployment e-mail to be sent',
    );
    await runDeploymentSweep(deps, quietLog);
    expect(
      await db.selectFrom('notifications').select('id').where('kind', '=', 'deployment_ended').execute(),
    ).toHaveLength(1);
    const mails = deploymentMails();
    expect(mails.length - before).toBe(1);
    expect(mails.at(-1)?.to).toContain(OWNER);
    expect(mails.at(-1)?.headers['x-tuneline-fine-tune']).toBe(fineTuneId);
    expect(mails.at(-1)?.body).toMatch(/15 days without calls/);
    // Its one started hour (6 h → 6.5 h) charged, the ledger consistent.
    expect(await hostingCharges(db)).toHaveLength(4);
    expect((await auditLedger(db)).violations).toEqual([]);
    // The gateway no longer serves it.
    const client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: key, maxRetries: 0 });
    await expect(
      client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 404 });
  });

  test('a link that runs twice (a crash after the PUT, a duplicate delivery) makes one deployment', async ({
    db,
    stages,
  }) => {
    const name = azureDeploymentName(fineTuneId);
    // The API's step, without its outbox being published here: the two deliveries below race the relay.
    const started = await startDeployment(db, {
      fineTuneId,
      licenseId: LICENSE,
      provider: 'azure',
      name,
      creditsPerHour: 1_700n,
      now: clock.now(),
    });
    expect(started.outcome).toBe('started');
    if (started.outcome !== 'started') return;
    // Link 0, as the API queued it (the outbox row's message), delivered twice.
    const message = queues['model-deployment'].schema.parse(
      deploymentFollowMessage(started.deployment).payload,
    );
    expect(message.step).toBe(0);
    const ctx = {
      queue: 'model-deployment' as const,
      jobId: 'dup',
      attempt: 1,
      correlationId: 'dup',
      log: quietLog,
    };
    await Promise.all([
      modelDeploymentStage.handle(message, ctx, deps),
      modelDeploymentStage.handle(message, ctx, deps),
    ]);
    await viewWhen(fineTuneId, (v) => v.activation === 'active', 'active');
    expect(sim.admin.azureDeployments().filter((d) => d.name === name)).toHaveLength(1);
    const live = await db
      .selectFrom('model_deployments')
      .select('id')
      .where('fine_tune_id', '=', fineTuneId)
      .where('ended_at', 'is', null)
      .execute();
    expect(live).toHaveLength(1);
    // A recovery (Redis lost the chain) re-adds the current link only; it finds nothing left to do.
    expect(await modelDeploymentStage.recover?.(deps)).toEqual([]);
    // The sweep as the scheduler queues it (the deployment-sweep stage): this deployment is gone too.
    expect(sim.admin.idleDelete(name)).toBe(true);
    await stages
      .consumer('deployment-sweep')
      .publisher.publish('deployment-sweep', 'deployment-sweep-test-1', deploymentSweepSchedulerPayload());
    const ended = await viewWhen(fineTuneId, (v) => v.deployment.state === 'deleted', 'the sweep to end it');
    expect(ended).toMatchObject({ activation: 'inactive', deployment: { reason: DEPLOYMENT_GONE_REASON } });
  });

  test('a deployment Azure cannot make leaves the model inactive with the reason; refusals are clear', async ({
    db,
  }) => {
    // A model the Azure account does not have: provisioning ends Failed.
    const datasetId = (await db.selectFrom('fine_tunes').select('dataset_id').executeTakeFirstOrThrow())
      .dataset_id;
    const orphan = await makeFineTune(db, LICENSE, datasetId, {
      model: 'gpt-4o-mini-2024-07-18:ft-nobody:none:x',
    });
    await db.updateTable('fine_tunes').set({ provider: 'azure' }).where('id', '=', orphan).execute();
    expect((await call('POST', `/v1/fine-tunes/${orphan}/activate`)).status).toBe(202);
    const failed = await viewWhen(orphan, (v) => v.deployment.state === 'failed', 'the deployment to fail');
    expect(failed).toMatchObject({ active: false, activation: 'inactive' });
    expect(failed.deployment.reason).toMatch(/could not deploy the model \(provisioning state Failed\)/);
    expect(sim.admin.azureDeployments().filter((d) => d.name === azureDeploymentName(orphan))).toEqual([]);

    // Discarding a deployed model waits for its deployment's deletion.
    expect((await call('POST', `/v1/fine-tunes/${fineTuneId}/activate`)).status).toBe(202);
    const discard = await call('POST', `/v1/fine-tunes/${fineTuneId}/discard`);
    expect(discard.status).toBe(409);
    expect(discard.json.error.message).toMatch(/deactivate the model first/);
    await viewWhen(fineTuneId, (v) => v.activation === 'active', 'active');
    await call('POST', `/v1/fine-tunes/${fineTuneId}/deactivate`);
    await viewWhen(fineTuneId, (v) => v.activation === 'inactive', 'inactive');

    // A license that cannot pay an hour of hosting is refused before anything is deployed.
    const poor = await makeLicense(db, 'lic-poor', 1_000n);
    const poorModel = await makeFineTune(db, poor.id, await makeDataset(db, poor.id, 'uploaded'), { model });
    await db.updateTable('fine_tunes').set({ provider: 'azure' }).where('id', '=', poorModel).execute();
    const refused = await call('POST', `/v1/fine-tunes/${poorModel}/activate`, poor.key);
    expect(refused.status).toBe(402);
    expect(refused.json.error.message).toMatch(/1700 credits per started hour; available: 1000/);
    expect((await getBalance(db, poor.id)).available).toBe(1_000n);
    // (The rows made by hand above carry no ledger entries of their own: only hosting is audited here.)
    const { violations } = await auditLedger(db);
    expect(violations.filter((v) => /hosting|cached balances|sum to zero/.test(v.invariant))).toEqual([]);
  });
});
