import { processClock } from '@tuneline/contracts';
import {
  type Db,
  findActiveFineTuneByModelOrAlias,
  findAlias,
  findDataset,
  findLiveDeployment,
  getEvaluationRunByFineTune,
  getFineTune,
  inTransaction,
  queueOutcome,
} from '@tuneline/db';
import { invoiceModelConfig, syntheticInvoices } from '@tuneline/devstack';
import type { EvaluationSummary } from '@tuneline/evaluation';
import { startSmtpServer } from '@tuneline/harness';
import { auditLedger } from '@tuneline/ledger';
import { azureDeploymentName, createProviderSet, providerEnvSchema } from '@tuneline/provider';
import { describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { type AnyJson, it } from '../api/support.ts';
import { mimeParts } from '../evaluator/support.ts';
import {
  startOuterStages,
  startPipeline,
  startSimulatorDeployments,
  tempStorage,
} from '../stages/harness.ts';
import { waitFor } from '../support/context.ts';

// One-call migration (issue 21.4) end to end, on the simulator's learning model: an OpenAI fine-tune
// serving the alias `invoices` is migrated to another base model (one epoch: worse, so the alias stays)
// and to Azure (not worse: the new model is deployed, then the alias moves), each a new job trained and
// evaluated against the old model on the same testing documents; the old model is untouched and nothing
// is charged twice.

const fineTuneRow = (db: Db, id: string) =>
  db.selectFrom('fine_tunes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

describe('migrating a fine-tune to another base model and to Azure', () => {
  it('trains, evaluates against the old model, moves the aliases only under the rule, charges once', async ({
    api,
    db,
    stages,
  }) => {
    const files = tempStorage();
    const smtp = await startSmtpServer();
    try {
      // The simulator serves every provider in its own dialect: Azure rows train at /openai/...
      const providers = createProviderSet(
        providerEnvSchema.parse({ SIMULATOR_URL: api.sim.url, SIMULATOR_API_KEY: api.sim.apiKey }),
      );
      const provider = providers.defaultProfile;
      await startPipeline({
        db,
        runner: stages,
        provider,
        providers,
        storage: files.storage,
        schedule: { intervalMs: 300, minIntervalMs: 100 },
      });
      await startOuterStages(stages, { db, storage: files.storage, provider, providers, smtpUrl: smtp.url });
      // Azure serves a fine-tune once deployed: the poller's deployment stage, on the simulator's ARM,
      // with the poller's clock, as its main.ts makes it: the one the migration's deployment is dated by.
      await startSimulatorDeployments(stages, db, api.sim, processClock());

      const license = await makeLicense(db, 'lic-migrate', 5_000_000n);
      const call = (method: 'GET' | 'POST', url: string, body?: unknown) =>
        api.call(method, url, license.key, body);

      // The OpenAI-profile fine-tune the app uses through its alias.
      const documents = syntheticInvoices({ count: 60, seed: 2026 });
      const sent = await call('POST', '/v1/fine-tune-requests', {
        requestId: 'invoices-v1',
        documents,
        modelConfig: invoiceModelConfig,
        testPercent: 20,
        baseModel: 'gpt-4o-mini-2024-07-18',
        job: { notifyEmails: 'owner@example.com' },
      });
      expect(sent.status, sent.text).toBe(202);
      const old = await waitFor(
        async () => {
          const r = await call('GET', '/v1/fine-tune-requests/invoices-v1');
          const ft = r.json.fineTunes?.[0];
          return ft?.available && (await getEvaluationRunByFineTune(db, ft.id))?.status === 'succeeded'
            ? ft
            : undefined;
        },
        60_000,
        'the OpenAI fine-tune, trained and evaluated',
      );
      expect((await call('POST', `/v1/fine-tunes/${old.id}/activate`)).status).toBe(200);
      expect((await call('POST', '/v1/aliases/invoices', { fineTuneId: old.id })).status).toBe(200);
      const oldBefore = await fineTuneRow(db, old.id);

      const decided = (id: string) =>
        waitFor(
          async () => {
            const m = await call('GET', `/v1/migrations/${id}`);
            return ['running', 'deploying'].includes(m.json.status) ? undefined : m.json;
          },
          90_000,
          `migration ${id}`,
        );

      // 1. To another base model with one epoch: a new job, judged against the old model.
      const toMini = await call('POST', `/v1/fine-tunes/${old.id}/migrate`, {
        provider: 'openai',
        baseModel: 'gpt-4.1-mini-2025-04-14',
        hyperparameters: { n_epochs: 1 },
      });
      expect(toMini.status, toMini.text).toBe(202);
      const mini = await decided(toMini.json.id);
      expect(mini).toMatchObject({ status: 'succeeded', championFineTuneId: old.id, stage: 'done' });
      const miniFt = await fineTuneRow(db, mini.newFineTune.fineTuneId);
      expect(miniFt).toMatchObject({ base_model: 'gpt-4.1-mini-2025-04-14', provider: 'openai' });
      expect(miniFt.provider_job_id).not.toBe(oldBefore.provider_job_id);

      // The same testing documents: the rebuilt testing file is the old one, line for line.
      const [oldDs, miniDs] = [
        await findDataset(db, old.datasetId),
        await findDataset(db, miniFt.dataset_id),
      ];
      expect(miniDs?.testExamples).toBe(12);
      expect(miniDs?.testSha256).toBe(oldDs?.testSha256);
      const oldRun = await getEvaluationRunByFineTune(db, old.id);
      const miniRun = await getEvaluationRunByFineTune(db, miniFt.id);
      expect(miniRun?.championFineTuneId).toBe(old.id);
      expect(miniRun?.models).toMatchObject({ champion: old.model, base: 'gpt-4.1-mini-2025-04-14' });
      expect(oldRun?.exampleIds).toHaveLength(12);
      expect(miniRun?.exampleIds).toEqual(oldRun?.exampleIds);
      const ids = new Set(documents.map((d) => d.id));
      expect(miniRun?.exampleIds?.every((id) => ids.has(id))).toBe(true);

      // The rule (if-not-worse) decided: kept exactly when the new model is worse than the old one.
      const vsOld = (run: typeof miniRun) =>
        (run?.summary as EvaluationSummary | undefined)?.report.comparisons.find(
          (c) => c.comparison === old.model,
        );
      const miniVerdict = vsOld(miniRun)?.verdict;
      expect(mini.decision).toBe(miniVerdict === 'worse' ? 'kept' : 'promoted');
      // One epoch of 48 examples against three (seeded: the same every run): significantly worse.
      expect(mini.decision).toBe('kept');
      expect(mini.reason).toMatch(
        /^not promoted \(if-not-worse: not significantly worse than the champion\): worse/,
      );
      expect(mini.aliases).toEqual([]);
      expect((await findAlias(db, license.id, 'invoices'))?.fineTuneId).toBe(old.id);

      // 2. To Azure, same base model and hyperparameters: not worse, so the alias moves.
      const toAzure = await call('POST', `/v1/fine-tunes/${old.id}/migrate`, {
        provider: 'azure',
        baseModel: 'gpt-4o-mini-2024-07-18',
      });
      expect(toAzure.status, toAzure.text).toBe(202);
      const azure = await decided(toAzure.json.id);
      const azureFt = await fineTuneRow(db, azure.newFineTune.fineTuneId);
      expect(azureFt).toMatchObject({
        provider: 'azure',
        base_model: 'gpt-4o-mini-2024-07-18',
        active: true,
      });
      const azureRun = await getEvaluationRunByFineTune(db, azureFt.id);
      expect(azureRun?.championFineTuneId).toBe(old.id);
      expect(azureRun?.exampleIds).toEqual(oldRun?.exampleIds);
      expect(azure.decision).toBe(vsOld(azureRun)?.verdict === 'worse' ? 'kept' : 'promoted');
      expect(azure).toMatchObject({
        status: 'succeeded',
        decision: 'promoted',
        aliases: [{ name: 'invoices', fromFineTuneId: old.id, toFineTuneId: azureFt.id }],
      });
      const alias = await findAlias(db, license.id, 'invoices');
      expect(alias?.fineTuneId).toBe(azureFt.id);
      expect(alias?.history[0]).toMatchObject({
        fromFineTuneId: old.id,
        toFineTuneId: azureFt.id,
        actor: `migration:${azure.id}`,
      });
      // The alias now resolves to the Azure model, served under its deployment's name.
      const deployment = await findLiveDeployment(db, azureFt.id);
      expect(deployment).toMatchObject({ state: 'active', name: azureDeploymentName(azureFt.id) });
      const served = await findActiveFineTuneByModelOrAlias(db, license.id, 'invoices');
      expect(served).toMatchObject({
        id: azureFt.id,
        viaAlias: 'invoices',
        deploymentName: deployment?.name,
      });

      // The hub's evaluation view carries the migration under the comparison with the old model.
      const view = await call('GET', `/v1/fine-tunes/${azureFt.id}/evaluation`);
      expect(view.json.table.hasChampion).toBe(true);
      expect(view.json.models.champion).toBe(old.model);
      expect(view.json.migration).toMatchObject({ id: azure.id, decision: 'promoted' });

      // The outcome e-mail shows the table and the decision, once.
      const mails = await waitFor(
        async () => {
          const found = smtp.received.filter((m) => m.raw.includes(azureFt.id));
          return found.length ? found : undefined;
        },
        30_000,
        "the Azure model's e-mail",
      );
      expect(mails).toHaveLength(1);
      const text = mimeParts(mails[0]?.raw ?? '')['text/plain'] ?? '';
      expect(text).toMatch(/field\s+base\s+champion\s+fine-tuned/);
      expect(text).toContain(`Migration ${azure.id} (rule if-not-worse)`);
      // Written when the rule decided, while the model was being deployed.
      expect(text).toContain(
        `Decision: promoted: deploying ${azureFt.fine_tuned_model} at azure; the old model's aliases move to it once it serves`,
      );
      const miniMail = await waitFor(
        async () => smtp.received.find((m) => m.raw.includes(miniFt.id)),
        30_000,
        "the one-epoch model's e-mail",
      );
      expect(mimeParts(miniMail.raw)['text/plain']).toContain(
        `Decision: kept: the old model's aliases still serve ${old.model}`,
      );

      // Once: asking again is the same migration; deciding again (a re-run) changes nothing.
      const again = await call('POST', `/v1/fine-tunes/${old.id}/migrate`, {
        provider: 'azure',
        baseModel: 'gpt-4o-mini-2024-07-18',
      });
      expect(again.status).toBe(200);
      expect(again.json.id).toBe(azure.id);
      const decidedRow = await db
        .selectFrom('model_migrations')
        .selectAll()
        .where('id', '=', azure.id)
        .execute();
      const azureRecord = await getFineTune(db, azureFt.id);
      if (azureRecord) await inTransaction(db, (tx) => queueOutcome(tx, azureRecord));
      expect((await findAlias(db, license.id, 'invoices'))?.history).toEqual(alias?.history);
      expect(
        await db.selectFrom('model_migrations').selectAll().where('id', '=', azure.id).execute(),
      ).toEqual(decidedRow);

      // The old model is untouched: the same row, still active, still evaluated once.
      expect(await fineTuneRow(db, old.id)).toEqual(oldBefore);
      // Three fine-tunes, each charged once (training posted once, every evaluation answer once).
      const fineTunes = await db
        .selectFrom('fine_tunes')
        .select('id')
        .where('license_id', '=', license.id)
        .execute();
      expect(fineTunes).toHaveLength(3);
      const posts = await db
        .selectFrom('ledger_transfers')
        .select('fine_tune_id')
        .where('kind', '=', 'post')
        .where('license_id', '=', license.id)
        .execute();
      expect(posts.map((p) => p.fine_tune_id).sort()).toEqual([old.id, miniFt.id, azureFt.id].sort());
      expect((await auditLedger(db)).violations).toEqual([]);
      const listed = await call('GET', `/v1/fine-tunes/${old.id}/migrations`);
      expect(listed.json.data.map((m: AnyJson) => m.id)).toEqual([azure.id, mini.id]);
    } finally {
      await stages.closeAll();
      await smtp.close();
      files.cleanup();
    }
  }, 240_000);
});
