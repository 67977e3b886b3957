// Inference per model in the hub: calls through the gateway show up per day and model, in the table
// and as bars of the chart (Debian's Chromium driven by playwright-core, like test/api/hub.test.ts).
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';
import { it, screenshot, signIn, test } from '../support/hub.ts';
import { type Gateway, INVOICES, startGateway } from './support.ts';

interface ModelUsage {
  days: Array<{ day: string; model: string; calls: number; promptTokens: string; completionTokens: string }>;
  models: Array<{
    model: string;
    calls: number;
    promptTokens: string;
    completionTokens: string;
    credits: string;
  }>;
}

const SCREENSHOT = join(import.meta.dirname, '__screenshots__', 'hub-usage.png');

let gw: Gateway;

test.beforeAll(async ({ database, prefix }) => {
  gw = await startGateway({ database, prefix }, 'openai');
});

afterAll(async () => {
  await gw?.close();
});

describe('inference by model in the hub', () => {
  it('shows calls, tokens and credits per day and model, as a table and a chart', async ({ browser }) => {
    // Three calls today through the gateway, on the active model.
    const usage = { prompt: 0, completion: 0 };
    for (const i of [1, 2, 3]) {
      const res = await gw.client.chat.completions.create({
        model: gw.model,
        messages: [{ role: 'user', content: INVOICES[i]!.user }],
      });
      usage.prompt += res.usage!.prompt_tokens;
      usage.completion += res.usage!.completion_tokens;
    }
    // A second active model (the simulator's base model), used yesterday.
    const other = 'gpt-4o-mini-2024-07-18';
    const otherFt = await makeFineTune(gw.t.db, gw.licenseA.id, await makeDataset(gw.t.db, gw.licenseA.id), {
      model: other,
      active: true,
    });
    const old = await gw.client.chat.completions.create({
      model: other,
      messages: [{ role: 'user', content: INVOICES[4]!.user }],
    });
    await gw.t.db
      .updateTable('inference_usage')
      .set({ created_at: new Date(Date.now() - 86_400_000) })
      .where('fine_tune_id', '=', otherFt)
      .execute();

    const api = await fetch(`${gw.gatewayUrl}/v1/credits/usage/models`, {
      headers: { authorization: `Bearer ${gw.licenseA.key}` },
    }).then((r) => r.json() as Promise<ModelUsage>);
    const today = new Date().toISOString().slice(0, 10);
    expect(api.days.find((d) => d.model === gw.model)).toMatchObject({
      day: today,
      calls: 3,
      promptTokens: String(usage.prompt),
      completionTokens: String(usage.completion),
    });
    expect(api.models.map((m) => m.model).sort()).toEqual([gw.model, other].sort());
    const otherTotals = api.models.find((m) => m.model === other)!;
    expect(otherTotals).toMatchObject({
      calls: 1,
      promptTokens: String(old.usage!.prompt_tokens),
      completionTokens: String(old.usage!.completion_tokens),
    });
    // Another license sees none of it.
    const foreign = await fetch(`${gw.gatewayUrl}/v1/credits/usage/models`, {
      headers: { authorization: `Bearer ${gw.licenseB.key}` },
    }).then((r) => r.json() as Promise<ModelUsage>);
    expect(foreign.days).toEqual([]);

    const page = await signIn(browser, `${gw.gatewayUrl}/hub`, gw.licenseA.key, {
      width: 1280,
      height: 1600,
    });
    const table = page.locator('#model-usage tbody');
    await table.getByText(gw.model).waitFor();
    const rows = await table.locator('tr').allTextContents();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(today);
    expect(rows[0]).toContain(usage.prompt.toLocaleString('en-US'));
    expect(rows[1]).toContain(other);
    expect(rows[1]).toContain(old.usage!.prompt_tokens.toLocaleString('en-US'));
    // One bar per (day, model), coloured per model, with a legend naming both.
    const bars = page.locator('#model-usage-chart svg rect');
    expect(await bars.count()).toBe(2);
    const fills = await bars.evaluateAll((rs) => rs.map((r) => r.getAttribute('fill')));
    expect(new Set(fills).size).toBe(2);
    const legend = await page.locator('#model-usage-chart .legend').textContent();
    expect(legend).toContain(`${gw.model} 3 calls`);
    const otherTokens = (old.usage!.prompt_tokens + old.usage!.completion_tokens).toLocaleString('en-US');
    expect(legend).toContain(`${other} 1 calls, ${otherTokens} tokens, ${otherTotals.credits} credits`);
    expect(await screenshot(page, SCREENSHOT)).toBeGreaterThan(10_000);
    await page.close();
  });
});
