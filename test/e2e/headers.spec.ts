/**
 * The page's security headers under the production server (issue #12, item 11): no source map is
 * served, the Permissions-Policy keeps only what the page uses, and the page works under Trusted
 * Types — making a key runs the scrypt worker (a script URL through the page's default policy) and
 * Svelte renders through its own policy — with nothing in Chromium's console about a Trusted Types
 * or Permissions-Policy violation.
 */
import { readdirSync } from 'node:fs';
import { expect, test } from '@playwright/test';

test('no source map is served, and none is built', async ({ request }) => {
  const assets = readdirSync('dist/assets');
  expect(assets.filter((f) => f.endsWith('.map'))).toEqual([]);
  const scripts = assets.filter((f) => f.endsWith('.js'));
  expect(scripts.length).toBeGreaterThan(0);
  for (const js of scripts) {
    expect((await request.get(`/assets/${js}`)).status(), js).toBe(200);
    const map = await request.get(`/assets/${js}.map`);
    expect(map.status(), `${js}.map`).toBe(404);
  }
});

test('the page sends its Permissions-Policy and Trusted Types CSP, and runs under them', async ({ page }) => {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (/trusted ?type|TrustedScriptURL|TrustedHTML|permissions.policy|feature policy/i.test(m.text())) {
      problems.push(`${m.type()}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const res = await page.goto('/#/keys');
  const headers = res!.headers();
  expect(headers['content-security-policy']).toContain("require-trusted-types-for 'script'");
  expect(headers['permissions-policy']).toContain('camera=()');
  expect(headers['permissions-policy']).toContain('publickey-credentials-get=(self)');
  await page.getByLabel('New key password').fill('headers-spec password');
  await page.getByRole('button', { name: 'Generate key pair' }).click();
  await expect(page.getByRole('status')).toContainText('Key ready', { timeout: 60_000 });
  expect(problems).toEqual([]);
});
