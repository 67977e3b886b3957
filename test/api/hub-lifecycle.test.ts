import { join } from 'node:path';
import { fixedClock } from '@tuneline/contracts';
import { findAlias } from '@tuneline/db';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect } from 'vitest';
import { api } from '../aliases/support.ts';
import { type ApiUnderTest, startApi } from '../support/api-app.ts';
import type { TestDatabase } from '../support/context.ts';
import { it, screenshot, signIn, test } from '../support/hub.ts';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';

/**
 * The hub's lifecycle parts in Debian's Chromium (playwright-core, like hub.test.ts): a banner per
 * base model (per provider) and alias whose training close or shutdown is near or past, judged on the
 * API's clock and naming the date and the successor; the alias pages (the aliases and what each
 * serves, one alias's history with who, when, from and to) and the rollback button.
 */

const MINI = 'gpt-4o-mini-2024-07-18';
// OpenAI's training close (2027-01-06) has passed; its shutdown (2027-01-14) is 4 days away. Azure's
// dates (training 2027-04-01, deployments 2027-10-01) are too far off to announce.
const clock = fixedClock('2027-01-10T12:00:00Z');

let t: TestDatabase;
let hubApi: ApiUnderTest;
let base: string;

/** This file's hub: the API reading `clock`, listening on a free loopback port. */
test.beforeAll(async ({ database, prefix }) => {
  t = database;
  hubApi = await startApi(t.db, prefix, { clock });
  base = await hubApi.app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await hubApi?.close();
});

const call = (key: string, method: string, path: string, body?: unknown) =>
  api(base, key, method, path, body);

/** Points alias `name` of the key's license at `fineTuneId` through the API, which must accept it. */
async function point(key: string, name: string, fineTuneId: string): Promise<void> {
  expect((await call(key, 'POST', `/v1/aliases/${name}`, { fineTuneId })).status).toBe(200);
}

/** An active trained fine-tune of `licenseId` on gpt-4o-mini, served by `provider` (null: the default). */
async function activeModel(licenseId: string, model: string, provider: string | null): Promise<string> {
  const id = await makeFineTune(t.db, licenseId, await makeDataset(t.db, licenseId, 'uploaded'), {
    model,
    active: true,
  });
  await t.db.updateTable('fine_tunes').set({ provider }).where('id', '=', id).execute();
  return id;
}

/** Moves the API's clock, presses Refresh and waits for a banner saying `text`. */
async function refreshAt(page: Page, at: string, text: string): Promise<void> {
  clock.set(at);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText(text).waitFor();
}

const bannerText = (page: Page, kind: string, name: string) =>
  page.locator(`#lifecycle-notices .banner[data-kind="${kind}"][data-name="${name}"]`).textContent();

describe('hub lifecycle banners and alias pages', () => {
  it('shows a banner per affected model and alias, the alias history, and rolls an alias back', async ({
    browser,
  }) => {
    const license = await makeLicense(t.db, 'lic-hub-life');
    const other = await makeLicense(t.db, 'lic-hub-life-other');
    const atOpenai = `ft:${MINI}:tuneline:invoices:life1`;
    const atAzure = `ft:${MINI}:tuneline:invoices:life2`;
    const openaiFt = await activeModel(license.id, atOpenai, null);
    const azureFt = await activeModel(license.id, atAzure, 'azure');
    // invoices: OpenAI's model, then switched to Azure's; receipts: OpenAI's. Another license's alias too.
    await point(license.key, 'invoices', openaiFt);
    await point(license.key, 'invoices', azureFt);
    await point(license.key, 'receipts', openaiFt);
    const otherFt = await activeModel(other.id, `ft:${MINI}:tuneline:other:life3`, null);
    await point(other.key, 'elsewhere', otherFt);

    // The API's notices, on its clock: the model at OpenAI and the alias serving it; not Azure's.
    const notices = await call(license.key, 'GET', '/v1/lifecycle/notices');
    expect(notices.status).toBe(200);
    expect(notices.json.asOf).toBe('2027-01-10T12:00:00.000Z');
    expect(notices.json.notices.map((n: { kind: string; name: string }) => `${n.kind} ${n.name}`)).toEqual([
      `model ${MINI}`, // a date passed first
      'alias receipts',
    ]);
    expect(notices.json.notices[0]).toMatchObject({
      provider: 'openai',
      models: [atOpenai],
      successor: `azure:${MINI}`,
      events: [
        { event: 'training_closes', date: '2027-01-06', state: 'past', daysLeft: 0 },
        { event: 'shutdown', date: '2027-01-14', state: 'soon', daysLeft: 4 },
      ],
    });

    const page = await signIn(browser, `${base}/hub`, license.key, { width: 1280, height: 1600 });
    await page.locator('#lifecycle-notices .banner').first().waitFor();
    expect(await page.locator('#lifecycle-notices .banner').count()).toBe(2);
    const model = await bannerText(page, 'model', MINI);
    expect(model).toContain(`Shutdown soon: ${MINI} at openai`);
    expect(model).toContain('takes no new fine-tuning jobs since 2027-01-06');
    expect(model).toContain('shuts down on 2027-01-14 (in 4 days)');
    expect(model).toContain(`Suggested successor: azure:${MINI}`);
    const receipts = await bannerText(page, 'alias', 'receipts');
    expect(receipts).toContain('Shutdown soon: alias receipts');
    expect(receipts).toContain(`serves ${atOpenai}`);

    // The alias list: what each alias serves, with the dates at its provider; never another license's.
    const invoicesRow = page.locator('#aliases tr[data-alias="invoices"]');
    await invoicesRow.waitFor();
    expect(await invoicesRow.textContent()).toContain(atAzure);
    expect(await invoicesRow.textContent()).toContain('azure');
    expect(await invoicesRow.textContent()).toContain('2027-10-01');
    expect(await page.locator('#aliases tr[data-alias="receipts"]').textContent()).toContain('2027-01-14');
    expect(await page.locator('#aliases tbody tr').count()).toBe(2);

    // One alias's page: history newest first with who, when, from and to.
    await invoicesRow.getByRole('button', { name: 'History of alias invoices' }).click();
    const history = page.locator('#alias-history tbody tr');
    await page.getByRole('heading', { name: `Alias invoices: serves ${atAzure}` }).waitFor();
    expect(await history.count()).toBe(2);
    const actor = `key:${license.key.slice(0, 10)}`;
    const newest = (await history.nth(0).textContent()) ?? '';
    expect(newest).toContain('pointed');
    expect(newest).toContain(atOpenai);
    expect(newest).toContain(atAzure);
    expect(newest).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d/);
    expect(await history.nth(1).textContent()).toContain('(created)');
    const stored = await findAlias(t.db, license.id, 'invoices');
    expect(stored?.history.map((h) => h.actor)).toEqual([actor, actor]);
    expect(newest).toContain(stored!.history[0]!.actor);

    // Rollback: back to OpenAI's model, through the API, recorded; the alias now gets a banner.
    await page.getByRole('button', { name: `Roll back invoices to ${atOpenai}` }).click();
    await page.getByText(`invoices rolled back: it serves ${atOpenai}.`).waitFor();
    await page.getByRole('heading', { name: `Alias invoices: serves ${atOpenai}` }).waitFor();
    expect(await history.count()).toBe(3);
    expect(await history.nth(0).textContent()).toContain('rolled back');
    expect(await page.locator('#aliases tr[data-alias="invoices"]').textContent()).toContain(atOpenai);
    await page.locator('#lifecycle-notices .banner[data-kind="alias"][data-name="invoices"]').waitFor();
    expect((await findAlias(t.db, license.id, 'invoices'))?.fineTuneId).toBe(openaiFt);

    // The shutdown day: the banners say so; Refresh reads the moved clock.
    await refreshAt(page, '2027-01-14T00:00:00Z', `Shut down: ${MINI} at openai`);
    expect(await bannerText(page, 'model', MINI)).toContain('was shut down on 2027-01-14: calls answer 410');
    expect(await bannerText(page, 'model', MINI)).not.toContain('takes no new fine-tuning jobs');
    expect(await bannerText(page, 'alias', 'invoices')).toContain('Shut down: alias invoices');
    expect(await page.locator('#lifecycle-notices .banner.past').count()).toBe(3);

    // Azure's own training close, weeks later: its banner names Azure's date and successor.
    await refreshAt(page, '2027-03-10T00:00:00Z', `Training closes soon: ${MINI} at azure`);
    const azure = await page
      .locator(`#lifecycle-notices .banner[data-kind="model"][data-provider="azure"]`)
      .textContent();
    expect(azure).toContain('takes no new fine-tuning jobs from 2027-04-01 (in 22 days)');
    expect(azure).toContain('Suggested successor: azure:gpt-4.1-mini-2025-04-14');

    await screenshot(page, join(import.meta.dirname, '__screenshots__', 'hub-lifecycle.png'));
    await page.close();
  });

  it('says why a rollback is refused, and opens an alias page from a link', async ({ browser }) => {
    clock.set('2027-01-10T12:00:00Z');
    const license = await makeLicense(t.db, 'lic-hub-life-2');
    const ft = await activeModel(license.id, `ft:${MINI}:tuneline:invoices:life4`, 'azure');
    await point(license.key, 'solo', ft);
    // Nothing to go back to: the button says so and stays disabled; the API refuses with 409 anyway.
    const page = await signIn(browser, `${base}/hub#alias=solo`, license.key);
    const button = page.getByRole('button', { name: 'Nothing to roll back for solo' });
    await button.waitFor();
    expect(await button.isDisabled()).toBe(true);
    expect(await page.locator('#alias-history tbody tr').count()).toBe(1);
    expect((await call(license.key, 'POST', '/v1/aliases/solo/rollback')).status).toBe(409);
    // No banner: Azure's dates are months away.
    expect(await page.locator('#lifecycle-notices').isHidden()).toBe(true);
    await page.close();
  });
});
