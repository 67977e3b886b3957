// The gateway routes each call to its model's own provider (issue 20.4): the API's chat providers are
// built once from the workers' provider variables (createChatProviders; here no real credentials, so
// the one simulator serves openai, azure and together, each in its own dialect), the deployment default
// being openai's. The simulator logs each chat request with its dialect and path.
import { buildApi, createChatProviders } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { providerEnvSchema } from '@tuneline/provider';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import { trainSimulatorModel } from '../support/simulator-models.ts';

const TOGETHER_MODEL = 'Qwen/Qwen2.5-7B-Instruct';

describe('the gateway calls each model at its own provider', () => {
  test('a Together model goes to Together, an Azure model to its Azure deployment, a model naming none to the default; an unconfigured provider is a 503 naming it', async ({
    db,
    redis,
    prefix,
    onTestFinished,
  }) => {
    const sim: RunningSimulator = await startSimulator({ port: 0, seed: 204, speed: 100_000 });
    const chat = createChatProviders(
      providerEnvSchema.parse({ SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
    );
    const withoutTogether = new Map(chat.chatProviders);
    withoutTogether.delete('together');
    const apps = await Promise.all(
      [chat.chatProviders, withoutTogether].map((chatProviders) =>
        buildApi({
          db,
          redis,
          queuePrefix: prefix,
          catalogue: defaultCatalogue,
          provider: chat.provider,
          chatProviders,
        }),
      ),
    );
    onTestFinished(async () => {
      for (const app of apps) await app.close();
      chat.close();
      await sim.close();
    });
    const [full, narrow] = (await Promise.all(
      apps.map((app) => app.listen({ port: 0, host: '127.0.0.1' })),
    )) as [string, string];

    const trained = await trainSimulatorModel(sim, { suffix: 'routing' });
    const license = await makeLicense(db, 'lic-gw-routing');
    const dataset = await makeDataset(db, license.id, 'uploaded');
    const byDefault = await makeFineTune(db, license.id, dataset, { model: trained, active: true });
    const azureModel = 'ft:gpt-4o-mini-2024-07-18:tuneline:azure:routing';
    const azure = await makeFineTune(db, license.id, dataset, { model: azureModel, active: true });
    const together = await makeFineTune(db, license.id, dataset, { model: TOGETHER_MODEL, active: true });
    // The simulator takes a deployment name that is no ARM deployment as the model: the trained one,
    // which the Azure model's own name is not, so only a call by the deployment's name answers.
    await db
      .updateTable('fine_tunes')
      .set({ provider: 'azure', deployment_name: trained })
      .where('id', '=', azure)
      .execute();
    await db
      .updateTable('fine_tunes')
      .set({ provider: 'together', base_model: TOGETHER_MODEL })
      .where('id', '=', together)
      .execute();

    const call = (url: string, model: string) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${license.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          messages: [{ role: 'user', content: 'Total: 10.00 EUR' }],
          max_completion_tokens: 50,
        }),
      });
    const routes: Record<string, string> = {};
    for (const model of [trained, azureModel, TOGETHER_MODEL]) {
      const before = sim.admin.chatRequests().at(-1)?.seq ?? -1;
      const res = await call(full, model);
      expect(res.status, model).toBe(200);
      expect(((await res.json()) as { model: string }).model).toBe(model);
      const received = sim.admin.chatRequests().filter((r) => r.seq > before);
      expect(received, model).toHaveLength(1);
      routes[model] = `${received[0]?.dialect} ${received[0]?.url.split('?')[0]}`;
    }
    expect(routes).toEqual({
      [trained]: 'openai /v1/chat/completions',
      [azureModel]: `azure /openai/deployments/${encodeURIComponent(trained)}/chat/completions`,
      [TOGETHER_MODEL]: 'together /together/v1/chat/completions',
    });
    // Every call was metered to its own fine-tune.
    const metered = await db.selectFrom('inference_usage').select('fine_tune_id').execute();
    expect(metered.map((m) => m.fine_tune_id).sort()).toEqual([byDefault, azure, together].sort());

    // An API without Together's credentials: OpenAI's envelope, naming the provider and what to set.
    const before = sim.admin.chatRequests().length;
    const refused = await call(narrow, TOGETHER_MODEL);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({
      error: {
        message: 'provider "together" is not configured in this deployment (set TOGETHER_API_KEY)',
        type: expect.any(String),
        param: 'model',
        code: 'provider_not_configured',
      },
    });
    expect(sim.admin.chatRequests()).toHaveLength(before);
    // Its hold was never taken: nothing metered, nothing held.
    expect(await db.selectFrom('inference_usage').select('id').execute()).toHaveLength(3);
    // The other models still answer there.
    expect((await call(narrow, trained)).status).toBe(200);

    // `stream: true` on the Together model: Together's stream (usage on its last chunk) is relayed as
    // server-sent events under the caller's model name, adds up to the whole answer, and is metered.
    const whole = (await (await call(full, TOGETHER_MODEL)).json()) as {
      choices: Array<{ message: { content: string } }>;
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    const streamed = await fetch(`${full}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${license.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: TOGETHER_MODEL,
        messages: [{ role: 'user', content: 'Total: 10.00 EUR' }],
        max_completion_tokens: 50,
        stream: true,
      }),
    });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await streamed.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice('data: '.length));
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e) as {
          object: string;
          model: string;
          usage?: unknown;
          choices: Array<{ delta: { content?: string | null } }>;
        },
    );
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks)
      expect(c).toMatchObject({ object: 'chat.completion.chunk', model: TOGETHER_MODEL });
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(
      whole.choices[0]?.message.content,
    );
    // The caller did not ask for usage: Together's usage on the last chunk is taken off, but metered.
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    expect(sim.admin.chatRequests().at(-1)).toMatchObject({
      dialect: 'together',
      body: { stream: true, stream_options: { include_usage: true } },
    });
    const rows = await waitFor(async () => {
      const r = await db
        .selectFrom('inference_usage')
        .select(['fine_tune_id', 'prompt_tokens', 'completion_tokens'])
        .where('fine_tune_id', '=', together)
        .execute();
      return r.length === 3 ? r : undefined;
    }, 5_000);
    expect(rows.at(-1)).toMatchObject({
      prompt_tokens: whole.usage.prompt_tokens,
      completion_tokens: whole.usage.completion_tokens,
    });
  });
});
