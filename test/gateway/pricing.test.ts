import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fallbackInferencePrice, inferenceTerms } from '@tuneline/api';
import { defaultCatalogue, loadCatalogue } from '@tuneline/dataset';
import { getBalance } from '@tuneline/ledger';
import { pino } from 'pino';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { it, test } from '../support/fixtures.ts';
import { ADMIN_KEY, type GatewayRig, startRig, trainSimulatorModel } from './support.ts';

const logLines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line));
    done();
  },
});

let rig: GatewayRig;
let model: string;
const dir = mkdtempSync(join(tmpdir(), 'tl-catalogue-'));

// Override the gpt-4o-mini inference prices through MODEL_CATALOGUE_FILE, like training prices.
const overrideFile = join(dir, 'catalogue.json');
writeFileSync(
  overrideFile,
  JSON.stringify({
    'gpt-4o-mini-2024-07-18': {
      inferenceInputCreditsPerMillion: 100_000,
      inferenceOutputCreditsPerMillion: '200000',
    },
  }),
);
const catalogue = loadCatalogue({ MODEL_CATALOGUE_FILE: overrideFile });

test.beforeAll(async ({ database, prefix }) => {
  rig = await startRig({ database, prefix }, { catalogue, logger: pino({ level: 'info' }, sink) });
  model = await trainSimulatorModel(rig.sim);
});

afterAll(async () => {
  await rig?.close();
});

async function chat(key: string, m: string) {
  return rig.app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}` },
    payload: {
      model: m,
      messages: [{ role: 'user', content: 'INVOICE 1\nTotal: 10.00 EUR' }],
      max_tokens: 50,
    },
  });
}

describe('inference prices come from the model catalogue', () => {
  it('the built-in catalogue prices every fine-tunable model the gateway serves and gives output limits', () => {
    // Together serves fine-tunes on dedicated endpoints billed per minute, not per token, and the
    // gateway forwards to the deployment's provider: its models carry no per-token inference price.
    const served = Object.values(defaultCatalogue).filter((e) => e.fineTunable && e.provider !== 'together');
    expect(served.length).toBeGreaterThan(5);
    for (const m of served) {
      expect(inferenceTerms(defaultCatalogue, m.name).known, m.name).toBe(true);
      expect(m.maxOutputTokens, m.name).toBeGreaterThan(0);
    }
    expect(inferenceTerms(defaultCatalogue, 'gpt-4o-mini-2024-07-18')).toEqual({
      price: { inputCreditsPerMillion: 300n, outputCreditsPerMillion: 1_200n },
      maxOutputTokens: 16_384,
      known: true,
    });
  });

  it('MODEL_CATALOGUE_FILE overrides the price the gateway charges', async () => {
    const lic = await makeLicense(rig.t.db, 'lic-override', 100_000n);
    await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
      model,
      active: true,
    });
    const res = await chat(lic.key, model);
    expect(res.statusCode).toBe(200);
    const { prompt_tokens, completion_tokens } = res.json().usage;
    const expected =
      (BigInt(prompt_tokens) * 100_000n + BigInt(completion_tokens) * 200_000n + 999_999n) / 1_000_000n;
    expect((await getBalance(rig.t.db, lic.id)).posted).toBe(100_000n - expected);
  });

  it('an unpriced base model is charged the most expensive price, logged and counted', async () => {
    const lic = await makeLicense(rig.t.db, 'lic-unpriced', 100_000n);
    const ft = await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
      model,
      active: true,
    });
    await rig.t.db
      .updateTable('fine_tunes')
      .set({ base_model: 'gpt-9-unlisted' })
      .where('id', '=', ft)
      .execute();
    const res = await chat(lic.key, model);
    expect(res.statusCode).toBe(200);
    const fallback = fallbackInferencePrice(catalogue);
    expect(fallback).toEqual({ inputCreditsPerMillion: 100_000n, outputCreditsPerMillion: 200_000n });
    const { prompt_tokens, completion_tokens } = res.json().usage;
    const expected =
      (BigInt(prompt_tokens) * fallback.inputCreditsPerMillion +
        BigInt(completion_tokens) * fallback.outputCreditsPerMillion +
        999_999n) /
      1_000_000n;
    expect((await getBalance(rig.t.db, lic.id)).posted).toBe(100_000n - expected);
    const line = logLines.find((l) => l.baseModel === 'gpt-9-unlisted');
    expect(line?.msg).toMatch(/no inference price/);
    expect(line?.level).toBe(40);
    const metrics = await rig.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(metrics.body).toContain(
      'tuneline_gateway_unpriced_model_total{model="gpt-9-unlisted",service="api"} 1',
    );
    expect((await rig.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
  });
});
