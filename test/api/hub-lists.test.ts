import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { billingSettleMessage } from '@tuneline/contracts';
import { type Db, recordRecovery } from '@tuneline/db';
import type { Browser, Page } from 'playwright-core';
import { describe, expect } from 'vitest';
import { it, screenshot, signIn, test } from '../support/hub.ts';
import { makeDataset, makeLicense } from './fixtures.ts';

/**
 * The hub's lists in Debian's Chromium (issue 15.8): why a dataset is invalid (its errors, not only its
 * warnings), each fine-tune's base model and hyperparameters, a cancel button, the license's dead
 * letters, and paging and filters on both lists.
 */

let base: string;
let browser: Browser;
let license: { id: string; key: string };
const ids = {} as Record<'invalid' | 'uploaded' | 'running' | 'done', string>;

async function fineTune(
  db: Db,
  datasetId: string,
  f: { status: string; baseModel: string; hyperparameters: unknown; description: string; at: Date },
): Promise<string> {
  const row = await db
    .insertInto('fine_tunes')
    .values({
      license_id: license.id,
      dataset_id: datasetId,
      correlation_id: randomUUID(),
      status: f.status as 'running',
      base_model: f.baseModel,
      description: f.description,
      notify_emails: [],
      suffix: 'invoices',
      hyperparameters: JSON.stringify(f.hyperparameters),
      credits_per_million_tokens: 3000,
      provider_job_id: `ftjob-${randomUUID()}`,
      created_at: f.at,
      finished_at: f.status === 'running' ? null : f.at,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

test.beforeAll(async ({ db, hub, browser: chromium }) => {
  base = hub.url;
  browser = chromium;
  license = await makeLicense(db, 'lic-hub-lists', 10_000n);

  // 30 ready datasets (more than a page of 25), created a day apart in November 2026…
  for (let i = 0; i < 30; i++) {
    const id = await makeDataset(db, license.id, 'ready');
    await db
      .updateTable('datasets')
      .set({
        created_at: new Date(Date.UTC(2026, 10, 1 + i, 12)),
        short_hash: `ds${String(i).padStart(6, '0')}`,
      })
      .where('id', '=', id)
      .execute();
  }
  // …one invalid dataset with its errors, and an uploaded one the fine-tunes come from.
  ids.invalid = await makeDataset(db, license.id, 'invalid');
  await db
    .updateTable('datasets')
    .set({
      short_hash: 'badbad01',
      errors: JSON.stringify([
        {
          code: 'missing_field',
          message: 'the validated fields lack "total"',
          documentId: 'inv-7',
          field: 'total',
        },
        { code: 'too_few_documents', message: 'at least 10 documents are needed, got 8' },
      ]),
      created_at: new Date(Date.UTC(2026, 11, 2, 9)),
    })
    .where('id', '=', ids.invalid)
    .execute();
  ids.uploaded = await makeDataset(db, license.id, 'uploaded');
  await db
    .updateTable('datasets')
    .set({ short_hash: 'upload01', created_at: new Date(Date.UTC(2026, 11, 2, 10)) })
    .where('id', '=', ids.uploaded)
    .execute();

  ids.running = await fineTune(db, ids.uploaded, {
    status: 'running',
    baseModel: 'gpt-4.1-mini-2025-04-14',
    hyperparameters: { n_epochs: 3, batch_size: 4, learning_rate_multiplier: 0.5 },
    description: 'Invoices running',
    at: new Date(Date.UTC(2026, 11, 2, 11)),
  });
  ids.done = await fineTune(db, ids.uploaded, {
    status: 'succeeded',
    baseModel: 'gpt-4o-mini-2024-07-18',
    hyperparameters: 'auto',
    description: 'Invoices done',
    at: new Date(Date.UTC(2026, 11, 2, 10, 30)),
  });
  // The done one's settlement kept failing after the recovery cap: a dead letter (cap 0: at once).
  const settle = billingSettleMessage({ fineTuneId: ids.done, correlationId: 'c' });
  await recordRecovery(db, {
    queue: settle.queue,
    jobId: settle.jobId,
    subjectKind: 'fine_tune',
    subjectId: ids.done,
    payload: settle.payload,
    reason: 'connect ECONNREFUSED 10.0.0.9:5432',
    cap: 0,
  });
});

/** The hub, signed in as the license, its fine-tunes shown. */
async function openLists(): Promise<Page> {
  const page = await signIn(browser, `${base}/hub`, license.key, { width: 1400, height: 1600 });
  await page.locator(`tr[data-fine-tune="${ids.running}"]`).waitFor();
  return page;
}

const datasetRows = (page: Page) => page.locator('#datasets tbody tr[data-dataset]');

describe('hub lists', () => {
  it('shows why a dataset is invalid, and pages and filters the datasets', async () => {
    const page = await openLists();
    const datasets = page.locator('#datasets-filter');
    const pager = page.locator('#datasets-pager');
    expect(await datasetRows(page).count()).toBe(25);
    expect(await pager.textContent()).toContain('Page 1');

    // The invalid dataset says why, as errors (the warnings stay apart).
    const invalid = page.locator(`tr[data-dataset="${ids.invalid}"]`);
    const errors = (await invalid.getByTestId('errors').textContent()) ?? '';
    expect(errors).toContain('document "inv-7", field "total": the validated fields lack "total"');
    expect(errors).toContain('at least 10 documents are needed, got 8');
    expect(await invalid.getByTestId('warnings').textContent()).toContain('fewer than 50 examples');

    // Paging: 32 datasets at 25 a page.
    await pager.getByRole('button', { name: 'Next page' }).click();
    await pager.getByText('Page 2 (last)').waitFor();
    expect(await datasetRows(page).count()).toBe(7);
    expect(await pager.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await pager.getByRole('button', { name: 'Previous page' }).click();
    await pager.getByText('Page 1').waitFor();
    expect(await datasetRows(page).count()).toBe(25);

    // Filters: status, then a date range (whole days, the last one included).
    await datasets.getByLabel('Status').selectOption('invalid');
    await datasets.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => datasetRows(page).count()).toBe(1);
    expect(await datasetRows(page).first().getAttribute('data-dataset')).toBe(ids.invalid);
    await datasets.getByLabel('Status').selectOption('');
    await datasets.getByLabel('Created from').fill('2026-11-05');
    await datasets.getByLabel('Created through').fill('2026-11-07');
    await datasets.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => datasetRows(page).count()).toBe(3);
    expect(await page.locator('#datasets tbody').textContent()).toContain('ds000004');

    // A range the API refuses is explained, not shown as an empty list.
    await datasets.getByLabel('Created from').fill('2026-11-09');
    await datasets.getByLabel('Created through').fill('2026-11-01');
    await datasets.getByRole('button', { name: 'Filter' }).click();
    await page
      .locator('#datasets-filter + p.error')
      .getByText('createdTo: must be after createdFrom')
      .waitFor();

    await datasets.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(() => datasetRows(page).count()).toBe(25);
    await page.close();
  });

  it('shows base model and hyperparameters per fine-tune, cancels a running one, filters, and lists dead letters', async ({
    db,
  }) => {
    const page = await openLists();
    const running = page.locator(`tr[data-fine-tune="${ids.running}"]`);
    const done = page.locator(`tr[data-fine-tune="${ids.done}"]`);
    expect(await running.getByTestId('base-model').textContent()).toBe('gpt-4.1-mini-2025-04-14');
    expect(await running.getByTestId('hyperparameters').textContent()).toBe(
      'n_epochs 3 · batch_size 4 · learning_rate_multiplier 0.5',
    );
    expect(await done.getByTestId('base-model').textContent()).toBe('gpt-4o-mini-2024-07-18');
    expect(await done.getByTestId('hyperparameters').textContent()).toBe('provider defaults (auto)');

    // The dead letter: a badge on its fine-tune with the reason, and a row in the dead-letter table.
    expect(await done.getByTestId('dead-letter').textContent()).toBe('dead-lettered');
    expect(await done.textContent()).toContain('connect ECONNREFUSED 10.0.0.9:5432');
    const dead = page.locator('#dead-letters tbody tr[data-dead-letter]');
    expect(await dead.count()).toBe(1);
    expect(await dead.textContent()).toContain('billing-settle');
    expect(await dead.textContent()).toContain(ids.done);

    // Only the running one can be cancelled; cancelling it asks the API and shows the request.
    expect(await done.getByRole('button', { name: /^Cancel/ }).count()).toBe(0);
    await running.getByRole('button', { name: 'Cancel Invoices running' }).click();
    await running.getByTestId('cancel-requested').waitFor();
    expect(await running.getByRole('button', { name: /^Cancel/ }).count()).toBe(0);
    const stored = await db
      .selectFrom('fine_tunes')
      .select('cancel_requested_at')
      .where('id', '=', ids.running)
      .executeTakeFirstOrThrow();
    expect(stored.cancel_requested_at).not.toBeNull();

    // Filters on the fine-tunes: base model, and status.
    const filter = page.locator('#fine-tunes-filter');
    const shown = () =>
      page
        .locator('#fine-tunes tbody tr[data-fine-tune]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fine-tune')));
    await filter.getByLabel('Base model').fill('gpt-4o-mini-2024-07-18');
    await filter.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(shown).toEqual([ids.done]);
    await filter.getByLabel('Base model').fill('');
    await filter.getByLabel('Status').selectOption('in progress');
    await filter.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(shown).toEqual([ids.running]);
    await filter.getByLabel('Status').selectOption('succeeded');
    await filter.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(shown).toEqual([ids.done]);

    await screenshot(page, join(import.meta.dirname, '__screenshots__', 'hub-lists.png'));
    await page.close();
  });
});
