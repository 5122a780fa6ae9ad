import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launchChromium } from '../helpers/browser';
import { describe, expect, it } from 'vitest';
import { renderCharts } from '../../core/report/charts';
import { renderHtml } from '../../core/report/render-html';
import { HOSTILE_LABELS, hostileReportData } from '../helpers/hostile-report';

// Issue 12, items 3 and 13: a report whose labels hold U+2028/U+2029, quotes, backslashes,
// `</script>` and markup renders, and opens in headless Chromium under its Content-Security-Policy
// with no script run, no error, no request and every chart visible.
describe('a report over hostile labels', () => {
  it('opens in Chromium inert: no script, no error, no request, charts visible', async () => {
    const data = hostileReportData();
    const html = renderHtml(data, await renderCharts(data));
    const file = join(mkdtempSync(join(tmpdir(), 'clipeval-hostile-report-')), 'report.html');
    writeFileSync(file, html);
    const url = pathToFileURL(file).href;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      const problems: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('dialog', (d) => {
        problems.push(`dialog: ${d.message()}`);
        void d.dismiss();
      });
      await page.route('**/*', (route) =>
        route.request().url() === url ? route.continue() : route.abort(),
      );
      await page.goto(url, { waitUntil: 'load' });
      for (const name of ['per-class', 'confusion-zero-shot'])
        expect(await page.locator(`figure[data-chart="${name}"] > svg`).isVisible()).toBe(true);
      expect(await page.locator('script').count()).toBe(0);
      // The markup in a label is text, not an element.
      expect(await page.locator('b[onmouseover]').count()).toBe(0);
      const text = await page.locator('body').innerText();
      expect(text).toContain(HOSTILE_LABELS[5]);
      expect(problems).toEqual([]);
      expect(requests).toEqual([url]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
