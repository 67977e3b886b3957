import OpenAI from 'openai';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';
import { type Gateway, lastReceived, meteredUsage, startGateway } from '../gateway/support.ts';
import { it, test } from '../support/fixtures.ts';
import { api, trainAnother } from './support.ts';

/** Model aliases (issue 21.1) through the gateway: the `openai` SDK, the API, the simulator over HTTP. */

let gw: Gateway;
let modelB: string;
let fineTuneB: string;
let otherLicenseFineTune: string;
const ask = {
  messages: [{ role: 'user' as const, content: 'INVOICE 1001\nSupplier: Acme\nTotal: 20.00 EUR' }],
};

test.beforeAll(async ({ database, prefix }) => {
  gw = await startGateway({ database, prefix });
  modelB = await trainAnother(gw.sim, 'second');
  fineTuneB = await makeFineTune(
    gw.t.db,
    gw.licenseA.id,
    await makeDataset(gw.t.db, gw.licenseA.id, 'uploaded'),
    {
      model: modelB,
      active: true,
    },
  );
  otherLicenseFineTune = await makeFineTune(
    gw.t.db,
    gw.licenseB.id,
    await makeDataset(gw.t.db, gw.licenseB.id, 'uploaded'),
    { model: gw.model, active: true },
  );
}, 60_000);

afterAll(async () => {
  await gw?.close();
});

const callA = (method: string, path: string, body?: unknown) =>
  api(gw.gatewayUrl, gw.licenseA.key, method, path, body);
const callB = (method: string, path: string, body?: unknown) =>
  api(gw.gatewayUrl, gw.licenseB.key, method, path, body);

describe('model aliases', () => {
  it('resolves an alias to the model it points at; the answer names that model and the alias', async () => {
    const pointed = await callA('POST', '/v1/aliases/invoices', { fineTuneId: gw.fineTuneId });
    expect(pointed.status).toBe(200);
    expect(pointed.json).toMatchObject({
      changed: true,
      alias: { name: 'invoices', fineTuneId: gw.fineTuneId, model: gw.model, active: true },
      change: { action: 'point', fromFineTuneId: null, toFineTuneId: gw.fineTuneId },
    });
    expect(pointed.json.change.actor).toMatch(/^key:tl_/);

    const { data, response } = await gw.client.chat.completions
      .create({ model: 'invoices', ...ask })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe(gw.model);
    expect(response.headers.get('x-tuneline-alias')).toBe('invoices');
    // The provider was asked for the model itself, never for the alias.
    expect(lastReceived(gw).model).toBe(gw.model);

    // Streaming through the alias: every chunk names the model, the header the alias.
    const stream = await gw.client.chat.completions
      .create({ model: 'invoices', ...ask, stream: true })
      .withResponse();
    expect(stream.response.headers.get('x-tuneline-alias')).toBe('invoices');
    const models = new Set<string>();
    for await (const chunk of stream.data) models.add(chunk.model);
    expect([...models]).toEqual([gw.model]);

    // The ft: name keeps working, without the alias header.
    const direct = await gw.client.chat.completions.create({ model: gw.model, ...ask }).withResponse();
    expect(direct.data.model).toBe(gw.model);
    expect(direct.response.headers.get('x-tuneline-alias')).toBeNull();

    const listed = await callA('GET', '/v1/aliases');
    expect(listed.json.aliases).toEqual([expect.objectContaining({ name: 'invoices', model: gw.model })]);
  });

  it('refuses a target that is not available and active, and a malformed name', async () => {
    const inactive = await makeFineTune(
      gw.t.db,
      gw.licenseA.id,
      await makeDataset(gw.t.db, gw.licenseA.id, 'uploaded'),
    );
    expect((await callA('POST', '/v1/aliases/invoices', { fineTuneId: inactive })).status).toBe(404);
    expect((await callA('POST', '/v1/aliases/Bad:Name', { fineTuneId: gw.fineTuneId })).status).toBe(400);
    expect(
      (await callA('POST', '/v1/aliases/invoices', { fineTuneId: gw.fineTuneId, extra: 1 })).status,
    ).toBe(400);
    // Nothing was recorded by the refusals.
    expect((await callA('GET', '/v1/aliases/invoices')).json.history).toHaveLength(1);
  });

  it('switches atomically under concurrent gateway calls: every answer is the old or the new target', async () => {
    const targets = [fineTuneB, gw.fineTuneId];
    const before = {
      a: (await meteredUsage(gw, gw.fineTuneId)).length,
      b: (await meteredUsage(gw, fineTuneB)).length,
    };
    const calls = Array.from({ length: 40 }, (_, i) =>
      gw.client.chat.completions
        .create({ model: 'invoices', ...ask, max_tokens: 40, user: `call-${i}` })
        .withResponse(),
    );
    const switches: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 10; i++)
      switches.push(callA('POST', '/v1/aliases/invoices', { fineTuneId: targets[i % 2] }));
    const [answers, switched] = await Promise.all([Promise.all(calls), Promise.all(switches)]);
    expect(switched.map((s) => s.status)).toEqual(Array(10).fill(200));
    const served = { a: 0, b: 0 };
    for (const { data, response } of answers) {
      expect([gw.model, modelB]).toContain(data.model);
      expect(response.headers.get('x-tuneline-alias')).toBe('invoices');
      if (data.model === gw.model) served.a++;
      else served.b++;
    }
    // Each call was metered on the fine-tune whose model answered it: no half-switched call.
    expect((await meteredUsage(gw, gw.fineTuneId)).length - before.a).toBe(served.a);
    expect((await meteredUsage(gw, fineTuneB)).length - before.b).toBe(served.b);
    // Every switch that changed something is in the history, in order, each from the previous target.
    const detail = await callA('GET', '/v1/aliases/invoices');
    const history = [...detail.json.history].reverse();
    for (let i = 1; i < history.length; i++)
      expect(history[i].fromFineTuneId).toBe(history[i - 1].toFineTuneId);
    expect(history.at(-1).toFineTuneId).toBe(detail.json.fineTuneId);
  });

  it('rolls back to the previous target, recorded, and refuses when there is nothing to go back to', async () => {
    await callA('POST', '/v1/aliases/invoices', { fineTuneId: gw.fineTuneId });
    const to = await callA('POST', '/v1/aliases/invoices', { fineTuneId: fineTuneB });
    expect(to.json.change).toMatchObject({ fromFineTuneId: gw.fineTuneId, toFineTuneId: fineTuneB });
    expect((await gw.client.chat.completions.create({ model: 'invoices', ...ask })).model).toBe(modelB);

    const back = await callA('POST', '/v1/aliases/invoices/rollback');
    expect(back.status).toBe(200);
    expect(back.json.change).toMatchObject({
      action: 'rollback',
      fromFineTuneId: fineTuneB,
      toFineTuneId: gw.fineTuneId,
    });
    expect((await gw.client.chat.completions.create({ model: 'invoices', ...ask })).model).toBe(gw.model);
    const detail = await callA('GET', '/v1/aliases/invoices');
    expect(detail.json.history[0]).toMatchObject({ action: 'rollback', toFineTuneId: gw.fineTuneId });

    await callA('POST', '/v1/aliases/fresh', { fineTuneId: fineTuneB });
    const nothing = await callA('POST', '/v1/aliases/fresh/rollback');
    expect(nothing.status).toBe(409);
    expect((await callA('POST', '/v1/aliases/unknown/rollback')).status).toBe(404);
  });

  it("answers 404 for another license's alias, like for its models", async () => {
    expect((await callB('POST', '/v1/aliases/shared', { fineTuneId: otherLicenseFineTune })).status).toBe(
      200,
    );
    const err = await gw.client.chat.completions.create({ model: 'shared', ...ask }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect((await callA('GET', '/v1/aliases/shared')).status).toBe(404);
    // Nor can a license point its alias at another license's fine-tune.
    expect((await callA('POST', '/v1/aliases/mine', { fineTuneId: otherLicenseFineTune })).status).toBe(404);
    // License B's alias serves B.
    const clientB = new OpenAI({ baseURL: `${gw.gatewayUrl}/v1`, apiKey: gw.licenseB.key, maxRetries: 0 });
    expect((await clientB.chat.completions.create({ model: 'shared', ...ask })).model).toBe(gw.model);
  });

  it('stops serving an alias whose model is deactivated (404), and serves it again once active', async () => {
    await callA('POST', '/v1/aliases/invoices', { fineTuneId: fineTuneB });
    expect((await callA('POST', `/v1/fine-tunes/${fineTuneB}/deactivate`)).status).toBe(200);
    const err = await gw.client.chat.completions
      .create({ model: 'invoices', ...ask })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((await callA('POST', `/v1/fine-tunes/${fineTuneB}/activate`)).status).toBe(200);
    expect((await gw.client.chat.completions.create({ model: 'invoices', ...ask })).model).toBe(modelB);
  });
});
