// A provider per license or request, through the API: the license names its provider, a request can
// name its own, the catalogue says who trains which model, and a provider this deployment cannot reach
// fails the request at once with a clear error. The grid and the estimate show the provider.
import { createProviderSet, ProviderNotConfiguredError, providerEnvSchema } from '@tuneline/provider';
import { afterAll, describe, expect } from 'vitest';
import { type ApiUnderTest, startApi } from '../support/api-app.ts';
import { it, test } from '../support/fixtures.ts';
import { makeLicense } from './fixtures.ts';
import { estimatePath } from './pricing.ts';

const ADMIN_KEY = 'admin-key-for-provider-tests-0123456789';
const LLAMA = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference';

let api: ApiUnderTest;
let lic: { id: string; key: string };

const call = (method: 'GET' | 'POST', url: string, key: string, payload?: unknown) =>
  api.call(method, url, key, payload);
/** Submits `request(requestId, extra)` as the license. */
const submit = (requestId: string, extra: Record<string, unknown> = {}) =>
  call('POST', '/v1/fine-tune-requests', lic.key, request(requestId, extra));

function request(requestId: string, extra: Record<string, unknown> = {}) {
  return {
    requestId,
    documents: Array.from({ length: 12 }, (_, i) => ({
      id: `d-${i}`,
      text: `INVOICE ${i} total ${i}.00`,
      fields: { total: i },
    })),
    modelConfig: { systemPrompt: 'Extract.', userPromptTemplate: '{{text}}', mappedFields: ['total'] },
    baseModel: 'gpt-4o-mini-2024-07-18',
    ...extra,
  };
}

test.beforeAll(async ({ db, prefix }) => {
  // This deployment has OpenAI and Azure credentials, not Together's.
  const providers = createProviderSet(
    providerEnvSchema.parse({
      OPENAI_API_KEY: 'sk-x',
      AZURE_OPENAI_ENDPOINT: 'https://x.openai.azure.com',
      AZURE_OPENAI_API_KEY: 'az',
    }),
  ).configured();
  expect(providers.sort()).toEqual(['azure', 'openai']);
  api = await startApi(db, prefix, { adminKey: ADMIN_KEY, providers });
  lic = await makeLicense(db, 'lic-prov');
});

afterAll(async () => {
  await api?.close();
});

describe('a provider per license', () => {
  it('creates a license with a provider and changes it; the license shows it', async () => {
    const created = await call('POST', '/v1/admin/licenses', ADMIN_KEY, {
      id: 'lic-azure',
      name: 'Azure shop',
      provider: 'azure',
    });
    expect(created.status).toBe(201);
    expect(created.json.provider).toBe('azure');
    const changed = await call('POST', '/v1/admin/licenses/lic-prov/provider', ADMIN_KEY, {
      provider: 'together',
    });
    expect(changed.status).toBe(200);
    expect(changed.json.provider).toBe('together');
    expect((await call('GET', '/v1/license', lic.key)).json.provider).toBe('together');
    const bad = await call('POST', '/v1/admin/licenses/lic-prov/provider', ADMIN_KEY, {
      provider: 'bedrock',
    });
    expect(bad.status).toBe(400);
    const missing = await call('POST', '/v1/admin/licenses/nope/provider', ADMIN_KEY, { provider: null });
    expect(missing.status).toBe(404);
  });

  it('refuses at once a request whose provider is not configured, naming what to set', async () => {
    // The license says together (not configured here): a Together model fails at once.
    const res = await submit('r-tg', { baseModel: LLAMA });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/provider "together" is not configured.*TOGETHER_API_KEY/);
    // A request can name its own provider: openai is configured and trains gpt-4o-mini.
    const own = await submit('r-oa', { provider: 'openai' });
    expect(own.status).toBe(202);
  });

  it('refuses a provider that does not train the model, saying who does', async () => {
    const res = await submit('r-x', { baseModel: LLAMA, provider: 'openai' });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/not trained by provider "openai" \(trained by: together\)/);
    // gpt-4o-mini is trained by openai and azure, not together (the license's provider).
    const lic2 = await submit('r-y');
    expect(lic2.status).toBe(400);
    expect(lic2.json.error.message).toMatch(/trained by: openai, azure/);
  });

  it('estimates at the provider, and says when the token count is an estimate', async () => {
    const together = await call('GET', estimatePath({ model: LLAMA, tokens: 1_000_000 }), lic.key);
    expect(together.status).toBe(200);
    expect(together.json).toMatchObject({
      provider: 'together',
      tokenCount: 'estimate',
      epochs: 1,
      credits: '480',
    });
    const azure = await call(
      'GET',
      estimatePath({ model: 'gpt-4o-mini-2024-07-18', tokens: 1_000_000, epochs: 1, provider: 'azure' }),
      lic.key,
    );
    expect(azure.json).toMatchObject({ provider: 'azure', tokenCount: 'exact' });
    const no = await call('GET', estimatePath({ model: LLAMA, tokens: 1, provider: 'azure' }), lic.key);
    expect(no.status).toBe(400);
  });

  it('names the provider in its error for a provider it does not know', () => {
    expect(new ProviderNotConfiguredError('bedrock').message).toMatch(/unknown provider "bedrock"/);
  });
});
