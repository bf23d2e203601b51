/**
 * #/verify with a pasted containers-policy.json, in Chromium, through the real relay to the real
 * registry, on an image signed by the REAL cosign 2.5: the policy decides the verdict (the page
 * says the key fields are not used), a policy naming another key says "Not verified" and keeps
 * what was typed, a malformed policy gives its code, and a verification link carrying
 * `containersPolicy` applies the same policy at once. The verdicts equal skopeo 1.18's
 * (test/integration/containers-policy-interop.test.ts proves that on the same kinds of policies).
 * Screenshots at 1280 and 360 px go to SHOTS.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verificationLink } from '../../shared/cosign/link.ts';
import { pushSampleImage, type PushedImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { cosign2SignArgs, cosignEnv, makeToolHome, runOk, type ToolHome } from '../rig/tools.ts';

const VECTORS = join(import.meta.dirname, '..', 'vectors', 'keys');
const SHOTS = process.env.PW_POLICY_SHOTS ?? join(import.meta.dirname, '..', '..', 'test-results', 'e2e');
const b64 = (name: string): string => readFileSync(join(VECTORS, name)).toString('base64');
const regs = () => registriesFromEnv()!;
let home: ToolHome;
let image: PushedImage;

test.beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  home = await makeToolHome('cosign-web-e2e-policy-');
  image = await pushSampleImage({ host: regs().tls.host, caFile: regs().tls.caFile }, 'e2e-policy/app', 'v1');
  const env = cosignEnv(home, { password: 'correct horse', caFile: regs().tls.caFile });
  await runOk('cosign2', cosign2SignArgs(join(VECTORS, 'cosign2-pw.key'), image.ref), { env });
});
test.afterAll(() => home.cleanup());

/** A whole policy: a sigstoreSigned requirement by `pub` for the image's repository, reject otherwise. */
const policy = (pub: string): string =>
  JSON.stringify(
    {
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          [image.repository]: [
            { type: 'sigstoreSigned', keyData: b64(pub), signedIdentity: { type: 'matchRepository' } },
          ],
        },
      },
    },
    null,
    2,
  );
const verdict = (page: Page) => page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ });
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `policy-${name}.png`), fullPage: true });

test('a pasted policy decides the verdict; another key is refused and the input kept', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto('/#/verify');
  await page.getByLabel('Image reference').fill(image.ref);
  await page.getByLabel('Containers policy', { exact: true }).fill(policy('cosign2-pw.pub'));
  await expect(page.getByRole('note', { name: 'The containers policy applies' })).toContainText(
    'The containers policy decides the verdict',
  );
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(
    /^Verified: 1 signature by this key on .*as the containers policy's transports\.docker/,
  );
  const result = page.getByRole('region', { name: 'Verification result' });
  await expect(result).toContainText(`Containers policy: transports.docker["${image.repository}"]`);
  await expect(result).toContainText('sigstoreSigned (keyData) accepted');
  await expect(page.getByLabel('Verification link')).toHaveValue(/&containersPolicy=[A-Za-z0-9_-]+$/);
  await shot(page, 'verified-1280');

  const other = policy('cosign3-pw.pub');
  await page.getByLabel('Containers policy', { exact: true }).fill(other);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: /);
  await expect(page.getByLabel('Containers policy', { exact: true })).toHaveValue(other);
  await page.setViewportSize({ width: 360, height: 800 });
  await shot(page, 'refused-360');
  const card = page.getByRole('region', { name: 'containers-policy.json (skopeo, podman)' });
  await card.screenshot({ path: join(SHOTS, 'policy-card-360.png') });
  await page
    .getByRole('region', { name: 'Verification result' })
    .screenshot({ path: join(SHOTS, 'policy-result-360.png') });
  // Nothing sticks out of the page at 360 px.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);

  await page.getByLabel('Containers policy', { exact: true }).fill('{"default": [{"type": "reject"}], "extra": 1}');
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(
    /^Not verified: This is not a containers-policy\.json .*unknown key "extra".* POLICY_INVALID$/,
  );
  await expect(page.getByLabel('Image reference')).toHaveValue(image.ref);
});

test('a verification link with containersPolicy applies it at once, and says who chose it', async ({
  page,
  baseURL,
}) => {
  await page.setViewportSize({ width: 360, height: 800 });
  const link = verificationLink(baseURL!, { image: image.ref, containersPolicy: policy('cosign2-pw.pub') });
  await page.goto(link);
  await expect(verdict(page)).toHaveText(/^Verified: /);
  await expect(page.getByRole('note', { name: 'The containers policy applies' })).toContainText(
    'This link supplied the policy',
  );
  await expect(page.getByLabel('Public key', { exact: true })).toHaveValue('');
  await shot(page, 'link-360');

  const reject = verificationLink(baseURL!, { image: image.ref, containersPolicy: '[{"type": "reject"}]' });
  await page.goto(reject);
  await expect(verdict(page)).toHaveText(
    /^Not verified: Running image docker:\/\/.* is rejected by policy \(requirements\)\..* POLICY_REJECTED$/,
  );
  await page.setViewportSize({ width: 1280, height: 900 });
  await shot(page, 'rejected-1280');
});
