import { baseModelIssue, defaultCatalogue, findBaseModel } from '@tuneline/dataset';
import { describe, expect } from 'vitest';
import { makeDataset } from '../api/fixtures.ts';
import { request } from '../api/support.ts';
import { it } from '../support/fixtures.ts';
import { ASK, buildAt, catalogueWith, MINI, shutDownError, useDatedGateway } from './support.ts';

/** Catalogue dates (issue 21.2) judged by one injectable clock (21.5): refusals, 410s, the API's views. */

const dated = useDatedGateway();
const { callA, clock } = dated;

describe('catalogue lifecycle dates', () => {
  it("carries OpenAI's published dates, the legacy shutdownDate as trainingClosesAt, and overrides", () => {
    expect(findBaseModel(MINI)).toMatchObject({
      trainingClosesAt: '2027-01-06',
      shutdownAt: '2027-01-14',
      successor: `azure:${MINI}`,
    });
    for (const m of ['gpt-4o-2024-08-06', 'gpt-4.1-2025-04-14', 'gpt-4.1-mini-2025-04-14'])
      expect(findBaseModel(m)).toMatchObject({ trainingClosesAt: '2027-01-06', shutdownAt: '2027-01-14' });
    expect(findBaseModel('gpt-4.1-nano-2025-04-14')?.shutdownAt).toBeUndefined();
    expect(findBaseModel(MINI)?.source).toMatch(/deprecations page \(May 2026\)/);
    expect(findBaseModel('gpt-3.5-turbo-1106')).toMatchObject({
      shutdownDate: '2026-10-23',
      trainingClosesAt: '2026-10-23',
    });

    const c = catalogueWith({
      [MINI]: { shutdownAt: '2026-12-20', successor: 'gpt-4.1-mini-2025-04-14' },
      'gpt-4.1-2025-04-14': { shutdownDate: '2026-12-10' },
    });
    expect(c[MINI]).toMatchObject({ trainingClosesAt: '2027-01-06', shutdownAt: '2026-12-20' });
    // The legacy field alone moves the training close, as it always meant.
    expect(c['gpt-4.1-2025-04-14']?.trainingClosesAt).toBe('2026-12-10');
  });

  it('the dataset build refuses a model past trainingClosesAt by its clock, naming the successor', async () => {
    expect((await buildAt('2027-01-05T23:00:00Z')).status).toBe('ready');
    const closed = await buildAt('2027-01-06T00:00:00Z');
    expect(closed.status).toBe('invalid');
    expect(closed.errors).toEqual([
      expect.objectContaining({
        code: 'base_model_retired',
        message: expect.stringContaining(`successor: azure:${MINI}`),
      }),
    ]);
  });

  it("the dataset build's check refuses a model past trainingClosesAt, naming the successor", () => {
    expect(baseModelIssue(MINI, defaultCatalogue, new Date('2027-01-05T23:59:59Z'))).toBeUndefined();
    expect(baseModelIssue(MINI, defaultCatalogue, new Date('2027-01-06T00:00:00Z'))).toMatchObject({
      code: 'base_model_retired',
      message: expect.stringContaining(`successor: azure:${MINI}`),
    });
  });

  it('shows the dates on fine-tunes and active models', async () => {
    const ft = await callA('GET', `/v1/fine-tunes/${dated.gw.fineTuneId}`);
    expect(ft.json.lifecycle).toMatchObject({
      trainingClosesAt: '2027-01-06',
      shutdownAt: '2027-01-14',
      successor: `azure:${MINI}`,
    });
    const active = await callA('GET', '/v1/models/active');
    expect(active.json.data[0]).toMatchObject({
      model: dated.gw.model,
      lifecycle: { shutdownAt: '2027-01-14' },
    });
  });

  it('past trainingClosesAt: requests and fine-tunes are refused at once, naming the successor', async () => {
    const uploaded = await makeDataset(dated.gw.t.db, dated.gw.licenseA.id, 'uploaded');
    clock.set('2027-01-06T00:00:01Z');
    const req = await callA('POST', '/v1/fine-tune-requests', request('closed-1'));
    expect(req.status).toBe(400);
    expect(req.json.error.message).toContain(`successor: azure:${MINI}`);
    const ft = await callA('POST', `/v1/datasets/${uploaded}/fine-tunes`, { description: 'late' });
    expect(ft.status).toBe(409);
    expect(ft.json.error.message).toMatch(/takes no new fine-tuning jobs at openai since 2027-01-06/);
    // Serving goes on until the shutdown.
    expect((await dated.gw.client.chat.completions.create({ model: dated.gw.model, ...ASK })).model).toBe(
      dated.gw.model,
    );
    dated.rewind();
    expect((await callA('POST', '/v1/fine-tune-requests', request('open-1'))).status).toBe(202);
  });

  it('past shutdownAt: the gateway answers 410 naming the successor, for ft: names and aliases', async () => {
    expect((await callA('POST', '/v1/aliases/invoices', { fineTuneId: dated.gw.fineTuneId })).status).toBe(
      200,
    );
    clock.set('2027-01-14T00:00:00Z');
    for (const model of [dated.gw.model, 'invoices']) {
      const e = await shutDownError(dated, model);
      expect(e.message).toContain(`successor: azure:${MINI}`);
      expect(e.message).toContain(dated.gw.model);
    }
    // Nothing was forwarded to the provider for a shut-down model.
    expect(dated.gw.sim.admin.chatRequests()).toHaveLength(1);
    // Nor can an alias be pointed at it any more; the alias shows the dates.
    const again = await callA('POST', '/v1/aliases/other', { fineTuneId: dated.gw.fineTuneId });
    expect(again.status).toBe(409);
    expect(again.json.error.message).toContain(`successor: azure:${MINI}`);
    expect((await callA('GET', '/v1/aliases/invoices')).json.lifecycle).toMatchObject({
      shutdownAt: '2027-01-14',
    });
    dated.rewind();
  });
});
