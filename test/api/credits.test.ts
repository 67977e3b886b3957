import { describe, expect } from 'vitest';
import { estimatePath } from './pricing.ts';
import { type ApiContext, it } from './support.ts';

const MINI = 'gpt-4o-mini-2024-07-18';

/** Credits and pricing: balance, usage log (JSON and CSV), estimates. */

let { a, b, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ a, b, call } = api);
});

describe('credits and pricing', () => {
  it('reports the balance and the usage log as JSON and CSV', async () => {
    const balance = await call('GET', '/v1/credits', b.key);
    expect(balance.json).toMatchObject({
      licenseId: 'lic-b',
      posted: '100000',
      available: '100000',
      pending: '0',
    });
    const json = await call('GET', '/v1/credits/usage', b.key);
    expect(json.json.data[0]).toMatchObject({ kind: 'grant', amount: '100000', posted: '100000' });
    const csv = await call('GET', '/v1/credits/usage?format=csv', b.key);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('at,kind,transferId,fineTuneId,model,tokens,amount,posted,available,memo');
    expect(lines[1]).toContain(',grant,grant-seed-lic-b,');
    const viaAccept = await call('GET', '/v1/credits/usage', b.key, undefined, { accept: 'text/csv' });
    expect(viaAccept.text).toBe(csv.text);
    expect((await call('GET', '/v1/credits/usage?format=xml', b.key)).status).toBe(400);
  });

  it('estimates training credits from the catalogue price', async () => {
    const res = await call('GET', estimatePath({ model: MINI, tokens: 100_000, epochs: 3 }), a.key);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      billedTokens: '300000',
      credits: '900',
      epochs: 3,
      creditsPerMillionTrainingTokens: '3000',
    });
    const auto = await call('GET', estimatePath({ model: MINI, tokens: 1000, examples: 20 }), a.key);
    expect(auto.json.epochs).toBe(5);
    const unknown = await call('GET', estimatePath({ model: 'gpt-9', tokens: 10 }), a.key);
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.fields[0].field).toBe('model');
    const missing = await call('GET', estimatePath({ model: MINI }), a.key);
    expect(missing.status).toBe(400);
    expect(missing.json.error.fields[0].field).toBe('tokens');
    expect((await call('GET', estimatePath({ model: 'x', tokens: 1 }))).status).toBe(401);
  });
});
