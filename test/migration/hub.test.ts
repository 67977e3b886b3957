import { describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { injectJson } from '../support/api-app.ts';
import { it, signIn } from '../support/hub.ts';
import { newFineTune, outcome, trainedFineTune } from './support.ts';

// The hub's evaluation panel of a migration's new model (issue 21.4), in Debian's Chromium: from which
// model to which target, the rule, the decision with its reason, and the aliases moved.

describe('the hub shows a migration under the evaluation', () => {
  it("names the old model, the target, the decision and the aliases moved on the new model's panel", async ({
    db,
    browser,
    hub,
  }) => {
    const license = await makeLicense(db, 'lic-hub-migration');
    const call = (url: string, body: unknown) => injectJson(hub.app, 'POST', url, license.key, body);
    const old = await trainedFineTune(db, license.id);
    expect((await call('/v1/aliases/invoices', { fineTuneId: old.id })).status).toBe(200);
    const started = await call(`/v1/fine-tunes/${old.id}/migrate`, {
      provider: 'openai',
      baseModel: 'gpt-4.1-mini-2025-04-14',
      promote: 'always',
    });
    expect(started.status, started.text).toBe(202);
    const trained = await newFineTune(db, license.id, started.json.id, 'succeeded', 'openai');
    await outcome(db, trained);

    const page = await signIn(browser, `${hub.url}/hub#fine-tune=${trained.id}`, license.key, {
      width: 1280,
      height: 1400,
    });
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
