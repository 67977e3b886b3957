import { fineTuneRequestMessage, fineTuneRequestMessageSchema, fixedClock } from '@tuneline/contracts';
import {
  baseModelIssue,
  defaultCatalogue,
  findBaseModel,
  lifecycleOf,
  trainingOffers,
} from '@tuneline/dataset';
import { handleFineTuneRequest } from '@tuneline/dataset-builder';
import { describe, expect } from 'vitest';
import { makeDataset } from '../api/fixtures.ts';
import { request } from '../api/support.ts';
import { requestInput } from '../dataset/fixtures.ts';
import { builderDeps } from '../retrain/support.ts';
import { it } from '../support/fixtures.ts';
import { ASK, buildAt, catalogueWith, MINI, shutDownError, useDatedGateway } from './support.ts';

/**
 * Lifecycle dates per base model AND provider (issue 21.2): OpenAI's training close and shutdown concern
 * jobs and fine-tunes at OpenAI; the same base model at Azure follows Azure's own dates. Every reader
 * (the dataset build's check, the API's refusals, the gateway's 410, the views) takes the provider of
 * the request, dataset or fine-tune, judged by one fixed clock. The sweep: test/lifecycle/sweep.test.ts.
 */

const dated = useDatedGateway();
const { callA, clock } = dated;

/** The gateway's fine-tune, served by `provider` (null: the deployment default). */
const servedBy = (provider: string | null) =>
  dated.gw.t.db.updateTable('fine_tunes').set({ provider }).where('id', '=', dated.gw.fineTuneId).execute();

async function datasetAt(provider: string | null): Promise<string> {
  const id = await makeDataset(dated.gw.t.db, dated.gw.licenseA.id, 'uploaded');
  await dated.gw.t.db.updateTable('datasets').set({ provider }).where('id', '=', id).execute();
  return id;
}

describe('catalogue dates per provider', () => {
  it("keeps OpenAI's dates on OpenAI and Azure's published dates on Azure", () => {
    const mini = findBaseModel(MINI);
    expect(lifecycleOf(mini, 'openai')).toMatchObject({
      provider: 'openai',
      trainingClosesAt: '2027-01-06',
      shutdownAt: '2027-01-14',
      successor: `azure:${MINI}`,
    });
    // A row without a provider (the deployment default) is judged by the model's own provider's dates.
    expect(lifecycleOf(mini, null)).toEqual(lifecycleOf(mini, 'openai'));
    expect(lifecycleOf(mini, 'azure')).toMatchObject({
      provider: 'azure',
      trainingClosesAt: '2027-04-01',
      shutdownAt: '2027-10-01',
      successor: 'azure:gpt-4.1-mini-2025-04-14',
      source: expect.stringMatching(/Azure OpenAI model retirement schedule/),
    });
    for (const m of ['gpt-4.1-2025-04-14', 'gpt-4.1-mini-2025-04-14', 'gpt-4.1-nano-2025-04-14'])
      expect(lifecycleOf(findBaseModel(m), 'azure')).toMatchObject({
        trainingClosesAt: '2027-04-14',
        shutdownAt: '2027-10-14',
        successor: null,
      });
    // A provider without dates in the catalogue has none: OpenAI's never stand in for them.
    expect(lifecycleOf(findBaseModel('gpt-3.5-turbo-0125'), 'azure')).toMatchObject({
      trainingClosesAt: null,
      shutdownAt: null,
    });
    expect(lifecycleOf(findBaseModel('Qwen/Qwen2.5-7B-Instruct'), null)).toMatchObject({
      provider: 'together',
      trainingClosesAt: null,
    });
    // The offers name each provider's own close; Azure's hosting fee stays beside its dates.
    const offers = trainingOffers(mini as NonNullable<typeof mini>);
    expect(offers.map((o) => [o.provider, o.trainingClosesAt, o.hostingCreditsPerHour])).toEqual([
      ['openai', '2027-01-06', undefined],
      ['azure', '2027-04-01', 1_700n],
    ]);
  });

  it('MODEL_CATALOGUE_FILE: flat fields move the own provider only, providers.<name> one provider', () => {
    const c = catalogueWith({
      // The flat form (as before per-provider dates): the model's own provider, OpenAI.
      [MINI]: { shutdownAt: '2026-12-20', successor: 'gpt-4.1-mini-2025-04-14' },
      // One provider's dates; the rest of that provider's entry and the other providers stay.
      'gpt-4o-2024-08-06': { providers: { azure: { shutdownAt: '2027-08-01' } } },
      // The legacy last day of a provider: closed from the day after.
      'gpt-4.1-2025-04-14': { providers: { azure: { trainingUntil: '2027-02-28' } } },
      // The legacy flat shutdownDate: the own provider's training close.
      'gpt-4.1-mini-2025-04-14': { shutdownDate: '2026-12-10' },
    });
    expect(lifecycleOf(c[MINI], 'openai')).toMatchObject({
      trainingClosesAt: '2027-01-06',
      shutdownAt: '2026-12-20',
      successor: 'gpt-4.1-mini-2025-04-14',
    });
    expect(c[MINI]).toMatchObject({ shutdownAt: '2026-12-20' }); // the flat view: the own provider's
    expect(lifecycleOf(c[MINI], 'azure')).toEqual(lifecycleOf(defaultCatalogue[MINI], 'azure'));
    expect(lifecycleOf(c['gpt-4o-2024-08-06'], 'azure')).toMatchObject({
      trainingClosesAt: '2027-04-01',
      shutdownAt: '2027-08-01',
    });
    expect(c['gpt-4o-2024-08-06']?.providers?.azure?.hostingCreditsPerHour).toBe(1_700n);
    expect(lifecycleOf(c['gpt-4o-2024-08-06'], 'openai').shutdownAt).toBe('2027-01-14');
    expect(lifecycleOf(c['gpt-4.1-2025-04-14'], 'azure').trainingClosesAt).toBe('2027-03-01');
    expect(lifecycleOf(c['gpt-4.1-mini-2025-04-14'], 'openai').trainingClosesAt).toBe('2026-12-10');
    expect(lifecycleOf(c['gpt-4.1-mini-2025-04-14'], 'azure').trainingClosesAt).toBe('2027-04-14');

    expect(() => catalogueWith({ [MINI]: { providers: { azure: { shutdownAt: 'soon' } } } })).toThrow(
      /providers\.azure\.shutdownAt/,
    );
  });
});

describe('readers take the provider at hand', () => {
  it("the dataset build's check: OpenAI's close refuses an OpenAI dataset, not an Azure one", async () => {
    const closedAtOpenai = new Date('2027-01-06T00:00:00Z');
    expect(baseModelIssue(MINI, defaultCatalogue, closedAtOpenai, 'openai')).toMatchObject({
      code: 'base_model_retired',
    });
    expect(baseModelIssue(MINI, defaultCatalogue, closedAtOpenai, null)).toMatchObject({
      code: 'base_model_retired',
    });
    expect(baseModelIssue(MINI, defaultCatalogue, closedAtOpenai, 'azure')).toBeUndefined();
    expect(baseModelIssue(MINI, defaultCatalogue, new Date('2027-04-01T00:00:00Z'), 'azure')).toMatchObject({
      code: 'base_model_retired',
      message: expect.stringMatching(/at azure since 2027-04-01; successor: azure:gpt-4\.1-mini-2025-04-14/),
    });

    expect((await buildAt('2027-01-07T00:00:00Z', 'azure')).status).toBe('ready');
    const openai = await buildAt('2027-01-07T00:00:00Z');
    expect(openai.status).toBe('invalid');
    expect(openai.errors[0]?.code).toBe('base_model_retired');
  });

  it("the dataset builder judges the provider it trains at: the request's, else the license's", async () => {
    const env = builderDeps(dated.gw.t.db);
    const deps = { ...env.deps, clock: fixedClock('2027-01-07T00:00:00Z') };
    const build = (requestId: string, licenseId: string, provider?: 'azure') => {
      const { payload } = fineTuneRequestMessage({
        request: requestInput({ requestId, licenseId, ...(provider ? { provider } : {}) }),
        correlationId: `corr-${requestId}`,
      });
      return handleFineTuneRequest(
        fineTuneRequestMessageSchema.parse(payload),
        { log: deps.log },
        deps,
      ).catch((err: Error) => err);
    };
    try {
      expect(await build('pp-build-azure', dated.gw.licenseA.id, 'azure')).toMatchObject({
        outcome: 'built',
        dataset: { status: 'ready', provider: 'azure' },
      });
      const openai = await build('pp-build-openai', dated.gw.licenseA.id);
      expect(openai).toBeInstanceOf(Error);
      expect((openai as Error).message).toMatch(/at openai since 2027-01-06/);
      // A license trained at Azure: its requests follow Azure's dates.
      await dated.gw.t.db
        .updateTable('licenses')
        .set({ provider: 'azure' })
        .where('id', '=', dated.gw.licenseB.id)
        .execute();
      expect(await build('pp-build-license', dated.gw.licenseB.id)).toMatchObject({
        outcome: 'built',
        dataset: { status: 'ready', provider: 'azure' },
      });
    } finally {
      env.cleanup();
    }
  });

  it("the API's refusals: past OpenAI's close, Azure requests and datasets still train", async () => {
    clock.set('2027-01-07T00:00:00Z');
    try {
      const openai = await callA('POST', '/v1/fine-tune-requests', request('pp-openai'));
      expect(openai.status).toBe(400);
      expect(openai.json.error.fields).toEqual([
        { field: 'baseModel', message: expect.stringMatching(/at openai since 2027-01-06/) },
      ]);
      const azure = await callA('POST', '/v1/fine-tune-requests', request('pp-azure', { provider: 'azure' }));
      expect(azure.status).toBe(202);

      const closed = await callA('POST', `/v1/datasets/${await datasetAt(null)}/fine-tunes`, {});
      expect(closed.status).toBe(409);
      expect(closed.json.error.message).toMatch(/at openai since 2027-01-06/);
      const open = await callA('POST', `/v1/datasets/${await datasetAt('azure')}/fine-tunes`, {});
      expect(open.status).toBe(201);
      expect(open.json).toMatchObject({
        provider: 'azure',
        lifecycle: { provider: 'azure', trainingClosesAt: '2027-04-01', shutdownAt: '2027-10-01' },
      });

      // Past Azure's own close, Azure is refused too, naming Azure's date and successor.
      clock.set('2027-04-01T00:00:00Z');
      const late = await callA(
        'POST',
        '/v1/fine-tune-requests',
        request('pp-azure-late', { provider: 'azure' }),
      );
      expect(late.status).toBe(400);
      expect(late.json.error.message).toMatch(
        /at azure since 2027-04-01; successor: azure:gpt-4\.1-mini-2025-04-14/,
      );
    } finally {
      dated.rewind();
    }
  });

  it("the gateway: past OpenAI's shutdown an Azure fine-tune serves (ft: name and alias); past Azure's, 410", async () => {
    await servedBy('azure');
    try {
      expect((await callA('POST', '/v1/aliases/invoices', { fineTuneId: dated.gw.fineTuneId })).status).toBe(
        200,
      );
      clock.set('2027-01-14T00:00:00Z');
      for (const model of [dated.gw.model, 'invoices'])
        expect((await dated.gw.client.chat.completions.create({ model, ...ASK })).model).toBe(dated.gw.model);

      // The views show the dates at the provider that serves it.
      const azureDates = {
        provider: 'azure',
        shutdownAt: '2027-10-01',
        successor: 'azure:gpt-4.1-mini-2025-04-14',
      };
      expect((await callA('GET', `/v1/fine-tunes/${dated.gw.fineTuneId}`)).json.lifecycle).toMatchObject(
        azureDates,
      );
      expect((await callA('GET', '/v1/models/active')).json.data[0].lifecycle).toMatchObject(azureDates);
      expect((await callA('GET', '/v1/aliases/invoices')).json).toMatchObject({
        provider: 'azure',
        lifecycle: azureDates,
      });
      // Pointing an alias at it is still allowed (the 409 is for a model shut down where it is served).
      expect((await callA('POST', '/v1/aliases/second', { fineTuneId: dated.gw.fineTuneId })).status).toBe(
        200,
      );

      clock.set('2027-10-01T00:00:00Z');
      for (const model of [dated.gw.model, 'invoices']) {
        const e = await shutDownError(dated, model);
        expect(e.message).toContain('shut down on 2027-10-01');
        expect(e.message).toContain(`"${MINI}" at azure; successor: azure:gpt-4.1-mini-2025-04-14`);
      }
      const again = await callA('POST', '/v1/aliases/third', { fineTuneId: dated.gw.fineTuneId });
      expect(again.status).toBe(409);

      // The same fine-tune served by the default (OpenAI) provider is past OpenAI's shutdown by then.
      await servedBy(null);
      clock.set('2027-01-14T00:00:00Z');
      const openai = await shutDownError(dated, dated.gw.model);
      expect(openai.message).toContain(`at openai; successor: azure:${MINI}`);
    } finally {
      await servedBy(null);
      dated.rewind();
    }
  });

  it("the API shows each row's dates at its provider: datasets, fine-tunes, estimates, base models", async () => {
    clock.set('2027-01-07T00:00:00Z');
    try {
      const azureDataset = await datasetAt('azure');
      const defaultDataset = await datasetAt(null);
      expect((await callA('GET', `/v1/datasets/${azureDataset}`)).json.lifecycle).toMatchObject({
        provider: 'azure',
        trainingClosesAt: '2027-04-01',
      });
      expect((await callA('GET', `/v1/datasets/${defaultDataset}`)).json.lifecycle).toMatchObject({
        provider: 'openai',
        trainingClosesAt: '2027-01-06',
      });
      const list = await callA('GET', '/v1/fine-tunes');
      expect(list.json.data.every((f: { lifecycle: { provider: string } }) => f.lifecycle.provider)).toBe(
        true,
      );
      const estimate = await callA('GET', `/v1/pricing/estimate?model=${MINI}&tokens=1000&provider=azure`);
      expect(estimate.json.lifecycle).toMatchObject({ provider: 'azure', shutdownAt: '2027-10-01' });

      const models = await callA('GET', '/v1/models/base');
      expect(models.status).toBe(200);
      expect(models.json.asOf).toBe('2027-01-07T00:00:00.000Z');
      const mini = models.json.data.find((m: { name: string }) => m.name === MINI);
      expect(mini).toMatchObject({ fineTunable: true, provider: 'openai', tokenCount: 'exact' });
      expect(mini.providers).toEqual([
        expect.objectContaining({
          provider: 'openai',
          creditsPerMillionTrainingTokens: '3000',
          hostingCreditsPerHour: null,
          trainingClosed: true,
          shutDown: false,
          lifecycle: expect.objectContaining({ trainingClosesAt: '2027-01-06', shutdownAt: '2027-01-14' }),
        }),
        expect.objectContaining({
          provider: 'azure',
          hostingCreditsPerHour: '1700',
          trainingClosed: false,
          shutDown: false,
          lifecycle: expect.objectContaining({ trainingClosesAt: '2027-04-01', shutdownAt: '2027-10-01' }),
        }),
      ]);
      const llama = models.json.data.find((m: { name: string }) => m.name === 'Qwen/Qwen2.5-7B-Instruct');
      expect(llama.providers[0]).toMatchObject({
        provider: 'together',
        lifecycle: { trainingClosesAt: null },
      });
    } finally {
      dated.rewind();
    }
  });
});
