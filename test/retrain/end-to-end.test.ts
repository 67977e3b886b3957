import { compileTemplate, loadCatalogue } from '@tuneline/dataset';
import { retrainCheckStage } from '@tuneline/dataset-builder/retrain';
import { startRetrainScheduler } from '@tuneline/dataset-builder/retrain-scheduler';
import {
  type Db,
  findAlias,
  findDataset,
  getEvaluationRunByFineTune,
  listEvaluationAnswers,
} from '@tuneline/db';
import { invoiceModelConfig, type SyntheticDocument, syntheticInvoices } from '@tuneline/devstack';
import type { EvaluationSummary } from '@tuneline/evaluation';
import { readTestingFile } from '@tuneline/evaluator';
import { startSmtpServer } from '@tuneline/harness';
import { auditLedger } from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { type AnyJson, it } from '../api/support.ts';
import { mimeParts } from '../evaluator/support.ts';
import { quietLog, startOuterStages, startPipeline, tempStorage } from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { redisUrl, waitFor } from '../support/context.ts';

// Issue 22 end to end, with the simulator's learning model: an app only sends validated documents and
// calls the alias. 60 documents → the scheduler starts v1, it trains, is evaluated (no champion yet: the
// rule against the base model) and promoted, so the alias serves it; 200 more → v2 trains, is
// evaluated against v1 on the same testing documents (v2's testing set holds v1's), the rule decides,
// and the alias serves v2 through the gateway without the app changing its call.

const CONFIG = 'invoices';
const fill = compileTemplate(invoiceModelConfig.userPromptTemplate);

/** The document ids of a testing file (each line's user message is the template filled with one document). */
async function testingIds(
  storage: ReturnType<typeof tempStorage>['storage'],
  key: string | null,
  docs: SyntheticDocument[],
): Promise<string[]> {
  const byPrompt = new Map(docs.map((d) => [fill(d), d.id]));
  const examples = await readTestingFile(storage, key ?? '');
  return examples.map((e) => byPrompt.get(e.messages.find((m) => m.role === 'user')?.content ?? '') ?? '?');
}

/** The version's evaluated fine-tune, once its decision is recorded. */
async function decidedVersion(call: (m: 'GET', url: string) => Promise<{ json: AnyJson }>, version: number) {
  return waitFor(
    async () => {
      const profile = await call('GET', '/v1/training-profiles/invoices');
      const v = profile.json.versions?.find((x: AnyJson) => x.version === version);
      return v?.promotion ? v : undefined;
    },
    120_000,
    `version ${version}'s promotion decision`,
  );
}

async function fineTuneRow(db: Db, id: string) {
  return db.selectFrom('fine_tunes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

describe('continuous re-training: champion and challenger', () => {
  it('60 documents → v1 promoted; 200 more → v2 judged against v1 and served by the alias', async ({
    api,
    db,
    prefix,
    stages,
  }) => {
    const files = tempStorage();
    const smtp = await startSmtpServer();
    const scheduler = await startRetrainScheduler({
      redisUrl: redisUrl(),
      prefix,
      everyMs: 300,
      log: quietLog,
    });
    try {
      const provider = makeProvider({ baseURL: api.sim.url, apiKey: api.sim.apiKey });
      await startPipeline({
        db,
        runner: stages,
        provider,
        storage: files.storage,
        schedule: { intervalMs: 300, minIntervalMs: 100 },
      });
      await startOuterStages(stages, { db, storage: files.storage, provider, smtpUrl: smtp.url });
      await stages.start(retrainCheckStage, {
        db,
        log: quietLog,
        storage: files.storage,
        catalogue: loadCatalogue({}),
      });

      const license = await makeLicense(db, 'lic-e2e', 5_000_000n);
      const call = (method: 'GET' | 'POST', url: string, body?: unknown) =>
        api.call(method, url, license.key, body);
      const created = await call('POST', '/v1/training-profiles', {
        name: 'invoices',
        configuration: CONFIG,
        modelConfig: invoiceModelConfig,
        baseModel: 'gpt-4o-mini-2024-07-18',
        testPercent: 20,
        alias: 'invoices',
        job: { notifyEmails: 'owner@example.com' },
        policy: { minNewDocuments: 50, minIntervalHours: 0, promotion: 'if-better' },
      });
      expect(created.status).toBe(201);

      // What the app does: send validated documents, and call its alias.
      const ingest = async (docs: SyntheticDocument[]) => {
        const res = await call('POST', '/v1/documents', {
          documents: docs.map((d) => ({ ...d, configuration: CONFIG })),
        });
        expect(res.status).toBe(200);
      };
      const ask = async () => {
        const res = await call('POST', '/v1/chat/completions', {
          model: 'invoices',
          temperature: 0,
          messages: [
            { role: 'system', content: invoiceModelConfig.systemPrompt },
            {
              role: 'user',
              content: fill(syntheticInvoices({ count: 1, seed: 99, idPrefix: 'q' })[0] as SyntheticDocument),
            },
          ],
        });
        expect(res.status).toBe(200);
        return res.json.model as string;
      };

      // v1: 60 documents; the scheduler's check starts it, the rule holds against the base model.
      const first = syntheticInvoices({ count: 60, seed: 2026 });
      await ingest(first);
      const v1 = await decidedVersion(call, 1);
      expect(v1.trigger).toBe('policy');
      expect(v1.promotion).toMatchObject({
        decision: 'promoted',
        rule: 'if-better',
        actor: 'policy:invoices',
        alias: 'invoices',
      });
      expect(v1.promotion.reason).toMatch(
        /^promoted \(if-better: significantly better than the base model \(no champion yet\)\): better/,
      );
      expect(v1.serving).toBe(true);
      expect(await ask()).toBe(v1.model);

      // v2: 200 more documents.
      const more = syntheticInvoices({ count: 200, seed: 7, idPrefix: 'b' });
      await ingest(more);
      const v2 = await decidedVersion(call, 2);
      expect(v2).toMatchObject({ documents: 260, added: 200, removed: 0 });

      // The same testing documents: v2's testing file holds every one of v1's.
      const [d1, d2] = [await findDataset(db, v1.datasetId), await findDataset(db, v2.datasetId)];
      const ids1 = await testingIds(files.storage, d1?.testPath ?? null, first);
      const ids2 = await testingIds(files.storage, d2?.testPath ?? null, [...first, ...more]);
      expect(ids1.length).toBeGreaterThan(0);
      expect(ids2).toEqual(expect.arrayContaining(ids1));
      expect(ids2).not.toContain('?');

      // v2 was evaluated against the champion v1 (and the base model): every example asked of each.
      const run = await getEvaluationRunByFineTune(db, v2.fineTuneId);
      expect(run?.championFineTuneId).toBe(v1.fineTuneId);
      expect(run?.models?.champion).toBe(v1.model);
      const answers = await listEvaluationAnswers(db, run?.id ?? '');
      const positions = (role: string) => answers.filter((a) => a.role === role).map((a) => a.position);
      expect(positions('fine_tuned')).toHaveLength(ids2.length);
      expect(positions('champion')).toEqual(positions('fine_tuned'));
      expect(positions('base')).toEqual(positions('fine_tuned'));

      // The rule decided: promoted exactly when v2 is significantly better than v1.
      const summary = run?.summary as EvaluationSummary;
      const vsChampion = summary.report.comparisons.find((c) => c.comparison === v1.model);
      const promoted = vsChampion?.verdict === 'better';
      expect(v2.promotion.decision).toBe(promoted ? 'promoted' : 'kept');
      expect(v2.promotion.championFineTuneId).toBe(v1.fineTuneId);
      const alias = await findAlias(db, license.id, 'invoices');
      expect(alias?.fineTuneId).toBe(promoted ? v2.fineTuneId : v1.fineTuneId);
      expect(alias?.history.map((h) => [h.fromFineTuneId, h.toFineTuneId, h.actor])).toEqual([
        ...(promoted ? [[v1.fineTuneId, v2.fineTuneId, 'policy:invoices']] : []),
        [null, v1.fineTuneId, 'policy:invoices'],
      ]);
      // The simulator's learning model: 208 training documents beat 48 (seeded, so it does every run).
      expect(promoted).toBe(true);

      // The app's call is unchanged; the alias now answers with v2's model. Both stay active.
      expect(await ask()).toBe(v2.model);
      expect((await fineTuneRow(db, v1.fineTuneId)).active).toBe(true);

      // The e-mail explains the decision with the table.
      const mail = await waitFor(
        async () => smtp.received.find((m) => m.raw.includes(v2.fineTuneId)),
        60_000,
        "v2's outcome e-mail",
      );
      const text = mimeParts(mail.raw)['text/plain'] ?? '';
      expect(text).toMatch(/field\s+base\s+champion\s+fine-tuned/);
      expect(text).toContain('Promotion (training profile "invoices", version 2, rule if-better)');
      expect(text).toContain(
        `Decision: promoted: the alias "invoices" now serves ${v2.model} (before: ${v1.model})`,
      );
      expect(smtp.received.filter((m) => m.raw.includes(v2.fineTuneId))).toHaveLength(1);
      expect((await auditLedger(db)).violations).toEqual([]);
    } finally {
      await scheduler.close();
      await stages.closeAll();
      await smtp.close();
      files.cleanup();
    }
  }, 240_000);
});
