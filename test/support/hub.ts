import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startApi, type TestApp } from './api-app.ts';
import { test as base } from './fixtures.ts';

/**
 * What the hub's browser tests share: Debian's Chromium (CHROMIUM_PATH when set) driven by
 * playwright-core, the API serving the hub on a loopback port, signing in and screenshots.
 */

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Chromium, headless and quiet; throws, saying how to get it, when it is not there. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** Opens `url` (a hub page) in a new page and signs in with the license key `key`. */
export async function signIn(
  browser: Browser,
  url: string,
  key: string,
  viewport?: { width: number; height: number },
): Promise<Page> {
  const page = await browser.newPage(viewport ? { viewport } : {});
  await page.goto(url);
  await page.getByLabel('License API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return page;
}

/** A full-page screenshot at `path` (its folder made when missing); its size in bytes. */
export async function screenshot(page: Page, path: string): Promise<number> {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  return statSync(path).size;
}

/**
 * The fixtures' test API plus, once per file: `browser`, Chromium (launchChromium), and `hub`, the API
 * over the file's database and prefix listening on a free loopback port (`url` its base address).
 */
export const test = base
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads what a fixture needs from this pattern
  .extend('browser', { scope: 'file' }, async ({}, { onCleanup }): Promise<Browser> => {
    const browser = await launchChromium();
    onCleanup(() => browser.close());
    return browser;
  })
  .extend(
    'hub',
    { scope: 'file' },
    async ({ db, prefix }, { onCleanup }): Promise<{ app: TestApp; url: string }> => {
      const api = await startApi(db, prefix);
      onCleanup(() => api.close());
      return { app: api.app, url: await api.app.listen({ port: 0, host: '127.0.0.1' }) };
    },
  );

export const it = test;
