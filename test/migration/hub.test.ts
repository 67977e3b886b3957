import { existsSync } from 'node:fs';
import { buildApi } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { createRedis } from '@tuneline/runtime';
import type { Redis } from 'ioredis';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect } from 'vitest';
import { api } from '../aliases/support.ts';
import { makeLicense } from '../api/fixtures.ts';
import { redisUrl } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { newFineTune, outcome, trainedFineTune } from './support.ts';

// The hub's evaluation panel of a migration's new model (issue 21.4), in Debian's Chromium: from which
// model to which target, the rule, the decision with its reason, and the aliases moved.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let app: Awaited<ReturnType<typeof buildApi>>;
let redis: Redis;
let base: string;
let browser: Browser;

test.beforeAll(async ({ database, prefix }) => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: set CHROMIUM_PATH`);
  redis = createRedis(redisUrl(), 'producer');
  app = await buildApi({ db: database.db, redis, queuePrefix: prefix, catalogue: defaultCatalogue });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  redis?.disconnect();
});

describe('the hub shows a migration under the evaluation', () => {
  it("names the old model, the target, the decision and the aliases moved on the new model's panel", async ({
    db,
  }) => {
    const license = await makeLicense(db, 'lic-hub-migration');
    const old = await trainedFineTune(db, license.id);
    expect(
      (await api(base, license.key, 'POST', '/v1/aliases/invoices', { fineTuneId: old.id })).status,
    ).toBe(200);
    const started = await api(base, license.key, 'POST', `/v1/fine-tunes/${old.id}/migrate`, {
      provider: 'openai',
      baseModel: 'gpt-4.1-mini-2025-04-14',
      promote: 'always',
    });
    expect(started.status).toBe(202);
    const trained = await newFineTune(db, license.id, started.json.id, 'succeeded', 'openai');
    await outcome(db, trained);

    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    await page.goto(`${base}/hub#fine-tune=${trained.id}`);
    await page.getByLabel('License API key').fill(license.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const panel = page.getByTestId('migration');
    await panel.waitFor();
    expect(await panel.getAttribute('data-decision')).toBe('promoted');
    const text = (await panel.textContent()) ?? '';
    expect(text).toContain(
      `Migration from ${started.json.from.model} (gpt-4o-mini-2024-07-18 at the default provider)`,
    );
    expect(text).toContain('to gpt-4.1-mini-2025-04-14 at openai, rule always: Promoted');
    expect(await page.getByTestId('migration-reason').textContent()).toMatch(
      /^promoted \(always\): not evaluated/,
    );
    expect(text).toContain('Aliases now serving the new model: invoices.');
    await page.close();
  });
});
