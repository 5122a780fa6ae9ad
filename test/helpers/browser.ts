import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Headless Chromium for the report tests, with no hand step: @sparticuz/chromium ships a Chromium
 * build inside its npm package (brotli-compressed, unpacked to the temp folder on first use), so
 * `npm ci` is all a bare machine needs. Playwright's own `playwright install` downloads from
 * Playwright's CDN, which the registries-only machines this project runs on cannot reach.
 * CHROMIUM_PATH overrides it with a browser of your own (e.g. Debian's /usr/bin/chromium).
 *
 * Playwright's default launch flags are used, not @sparticuz/chromium's serverless ones
 * (`--disable-web-security` among them): the tests check the report's Content-Security-Policy.
 */
export async function launchChromium(): Promise<Browser> {
  const own = process.env.CHROMIUM_PATH;
  if (own !== undefined && !existsSync(own))
    throw new Error(`CHROMIUM_PATH=${own} does not exist: unset it to use the bundled Chromium.`);
  return chromium.launch({ executablePath: own ?? (await bundledChromium()) });
}

/** @sparticuz/chromium is an ES module only and the tests compile to CommonJS: imported on use. */
async function bundledChromium(): Promise<string> {
  const { default: bundled } = await import('@sparticuz/chromium');
  return bundled.executablePath();
}
