import { join } from 'node:path';
import { endDeployment, findAlias, recordVersionPromotion } from '@tuneline/db';
import { postReservation, reserveCredits } from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { saveProfile, seedTrainedVersion } from '../retrain/support.ts';
import { it, screenshot, signIn } from '../support/hub.ts';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';

/** The hub in Debian's Chromium, driven by playwright-core: sign in, see a finished fine-tune, activate it. */

const SCREENSHOTS = join(import.meta.dirname, '__screenshots__');

describe('hub page', () => {
  it('signs in, shows a finished fine-tune, activates it and reads the usage log', async ({
    db,
    hub,
    browser,
  }) => {
    const license = await makeLicense(db, 'lic-hub', 50_000n);
    const dataset = await makeDataset(db, license.id, 'uploaded');
    const model = 'ft:gpt-4o-mini-2024-07-18:tuneline:invoices:hub1';
    const fineTune = await makeFineTune(db, license.id, dataset, { model, withHistory: true });
    // The ledger entries the trainer and billing would have written for it.
    await db.transaction().execute(async (tx) => {
      await reserveCredits(tx, {
        fineTuneId: fineTune,
        licenseId: license.id,
        amount: 260n,
        model: 'gpt-4o-mini-2024-07-18',
      });
      await postReservation(tx, { fineTuneId: fineTune, amount: 216n, tokens: 72_000n, model });
    });

    const page = await signIn(browser, `${hub.url}/hub`, 'tl_wrong', { width: 1280, height: 1400 });
    await page.getByText('That key was not accepted.').waitFor();

    await page.getByLabel('License API key').fill(license.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const row = page.locator(`tr[data-fine-tune="${fineTune}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('succeeded');
    expect(await row.textContent()).toContain(model);
    expect(await row.textContent()).toContain('72,000');
    expect(await row.locator('[data-testid="active"]').textContent()).toBe('inactive');
    expect(await page.locator('#datasets tbody').textContent()).toContain('a1b2c3d4');

    await row.getByRole('button', { name: `Activate ${model}` }).click();
    await row.getByRole('button', { name: `Deactivate ${model}` }).waitFor();
    expect(await page.locator(`tr[data-fine-tune="${fineTune}"] [data-testid="active"]`).textContent()).toBe(
      'active',
    );
    const stored = await db
      .selectFrom('fine_tunes')
      .select('active')
      .where('id', '=', fineTune)
      .executeTakeFirstOrThrow();
    expect(stored.active).toBe(true);

    const usage = page.locator('#usage tbody');
    await usage.getByText('charge').waitFor();
    const usageText = (await usage.textContent()) ?? '';
    expect(usageText).toContain('grant');
    expect(usageText).toContain('release');
    expect(usageText).toContain('49,784'); // 50,000 granted − 216 charged
    expect(await page.getByTestId('balance-available').textContent()).toBe('49,784');

    await row.getByRole('button', { name: `Show events and loss of ${model}` }).click();
    await page.locator('#loss-chart svg polyline').waitFor();
    expect(await page.locator('#loss-chart svg circle').count()).toBe(4);
    expect(await page.locator('#events li').count()).toBe(3);

    await page.getByLabel('Tokens per epoch').fill('100000');
    await page.getByLabel('Epochs (empty: auto)').fill('3');
    await page.getByRole('button', { name: 'Estimate' }).click();
    await page.getByText('900 credits', { exact: false }).waitFor();

    expect(await screenshot(page, join(SCREENSHOTS, 'hub.png'))).toBeGreaterThan(10_000);
    await page.close();
  });

  it('renders the API reference from /openapi.json without any CDN', async ({ hub, browser }) => {
    const base = hub.url;
    const page = await browser.newPage();
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) external.push(r.url());
    });
    await page.goto(`${base}/docs`);
    await page.getByRole('heading', { name: 'Schemas' }).waitFor();
    // One entry per operation of the document the page was rendered from (at least the 19 of the first release).
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, object> };
    const operations = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    expect(operations).toBeGreaterThanOrEqual(19);
    expect(await page.locator('details.op').count()).toBe(operations);
    expect(await page.locator('#schema-FineTuneRequest').count()).toBe(1);
    expect(external).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, 'docs.png') });
    await page.close();
  });

  it("shows a training-profile version's decision and promotes it with one button", async ({
    db,
    hub,
    browser,
  }) => {
    const license = await makeLicense(db, 'lic-hub-promote', 0n);
    const profile = await saveProfile(db, license.id, {
      alias: 'invoices',
      policy: { minNewDocuments: 50, minIntervalHours: 0, promotion: 'manual' },
    });
    const model = 'ft:gpt-4o-mini-2024-07-18:tuneline:invoices:hub2';
    const { fineTuneId } = await seedTrainedVersion(db, profile, 1, { model });
    await recordVersionPromotion(db, {
      profileId: profile.id,
      version: 1,
      decision: 'manual',
      rule: 'manual',
      reason: 'promotion is manual (the evaluation is in the table); promote the version by hand to serve it',
      actor: 'policy:invoices',
      alias: null,
      fineTuneId,
      championFineTuneId: null,
      undecidedOnly: true,
    });

    const page = await signIn(browser, `${hub.url}/hub#fine-tune=${fineTuneId}`, license.key);
    const decision = page.getByTestId('promotion-decision');
    await decision.waitFor();
    expect(await decision.getAttribute('data-decision')).toBe('manual');
    expect(await decision.textContent()).toContain('Training profile invoices, version 1: Waiting for you');
    expect(await page.getByTestId('promotion-reason').textContent()).toContain('promotion is manual');

    await page.getByRole('button', { name: 'Promote: serve it as invoices' }).click();
    await page.getByTestId('promotion-serving').waitFor();
    expect(await page.getByTestId('promotion-serving').textContent()).toBe(
      'The alias invoices serves this model.',
    );
    expect(await page.getByTestId('promotion-decision').getAttribute('data-decision')).toBe('promoted');
    expect((await findAlias(db, license.id, 'invoices'))?.fineTuneId).toBe(fineTuneId);
    await page.close();
  });

  it('shows an Azure model deploying with its hosting fee, and why its deployment ended', async ({
    db,
    hub,
    browser,
  }) => {
    const license = await makeLicense(db, 'lic-hub-azure', 50_000n);
    const dataset = await makeDataset(db, license.id, 'uploaded');
    const model = 'ft:gpt-4o-mini-2024-07-18:tuneline:invoices:azure1';
    const fineTune = await makeFineTune(db, license.id, dataset, { model });
    await db.updateTable('fine_tunes').set({ provider: 'azure' }).where('id', '=', fineTune).execute();

    const page = await signIn(browser, `${hub.url}/hub`, license.key, { width: 1280, height: 1400 });
    const row = page.locator(`tr[data-fine-tune="${fineTune}"]`);
    await row.waitFor();
    expect(await row.getByTestId('hosting-fee').textContent()).toBe(
      'hosting 1,700 credits/hour while deployed',
    );

    // Activation deploys it (no poller runs here, so it stays deploying): Deactivate withdraws it.
    await row.getByRole('button', { name: `Activate ${model}` }).click();
    await row.getByRole('button', { name: `Deactivate ${model}` }).waitFor();
    expect(await row.getByTestId('active').textContent()).toContain('deploying…');
    await page.getByText(`${model} is being deployed`, { exact: false }).waitFor();

    // Provisioning failed at Azure: the row says why, and offers Activate again.
    const deployment = await db
      .selectFrom('model_deployments')
      .select('id')
      .where('fine_tune_id', '=', fineTune)
      .executeTakeFirstOrThrow();
    await endDeployment(db, {
      id: deployment.id,
      from: ['deploying'],
      state: 'failed',
      reason: 'the provider could not deploy the model (provisioning state Failed)',
      now: new Date(),
    });
    await page.reload();
    await row.getByRole('button', { name: `Activate ${model}` }).waitFor();
    expect(await row.getByTestId('deployment-reason').textContent()).toBe(
      'the provider could not deploy the model (provisioning state Failed)',
    );
    await page.close();
  });
});
