/**
 * #/verify-file in Chromium on what the REAL Sigstore services emit: cosign 3.1 signs a file with a
 * key against a real Rekor v2 and timestamp authority on loopback (test/rig/sigstore-services.ts);
 * the page, given the file, the bundle, the public key and the services' trusted root through
 * "Trusted root file", says "Verified" — and "Not verified" with the code when the inclusion proof
 * was tampered with. The services run only while this file's tests do.
 */
import { expect, test, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cosign3SignBlobArgs, startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { cosignEnv, makeToolHome, runOk, type ToolHome } from '../rig/tools.ts';

let services: SigstoreServices;
let home: ToolHome;
let files: { artifact: string; bundle: string; tampered: string; pub: string };

test.beforeAll(async () => {
  test.setTimeout(180_000);
  home = await makeToolHome('cosign-web-e2e-stack-');
  services = await startSigstoreServices({ dir: join(home.dir, 'services') });
  const env = { env: cosignEnv(home, { password: '' }) };
  await runOk('cosign3', ['generate-key-pair', '--output-key-prefix', join(home.dir, 'cosign')], env);
  const key = join(home.dir, 'cosign.key');
  // One entry before ours, so that its inclusion proof has a hash to tamper with.
  for (const name of ['first.txt', 'artifact.txt']) {
    const file = join(home.dir, name);
    writeFileSync(file, `${name}: signed against the real Rekor v2 and TSA\n`);
    await runOk('cosign3', cosign3SignBlobArgs(services, key, file, `${file}.sigstore.json`), env);
  }
  const artifact = join(home.dir, 'artifact.txt');
  const bundle = `${artifact}.sigstore.json`;
  const json = JSON.parse(readFileSync(bundle, 'utf8')) as {
    verificationMaterial: { tlogEntries: { inclusionProof: { hashes: string[] } }[] };
  };
  const hashes = json.verificationMaterial.tlogEntries[0]!.inclusionProof.hashes;
  const first = Buffer.from(hashes[0]!, 'base64');
  first[0]! ^= 0x80;
  hashes[0] = first.toString('base64');
  const tampered = join(home.dir, 'tampered.sigstore.json');
  writeFileSync(tampered, JSON.stringify(json));
  files = { artifact, bundle, tampered, pub: join(home.dir, 'cosign.pub') };
});

test.afterAll(async () => {
  await services?.stop();
  await home?.cleanup();
});

const field = (page: Page, label: string) => page.getByLabel(label, { exact: true });
const verdict = (page: Page) => page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ });

test("the page verifies cosign 3.1's bundle from the real Rekor v2 and TSA with their trusted root, and refuses a tampered proof", async ({
  page,
}) => {
  await page.goto('/#/verify-file');
  await expect(page.getByRole('heading', { name: 'Verify a file' })).toBeVisible();
  await field(page, 'File to verify').setInputFiles(files.artifact);
  await field(page, 'Sigstore bundle').setInputFiles(files.bundle);
  await field(page, 'Public key').fill(readFileSync(files.pub, 'utf8'));
  await field(page, 'Trusted root file').setInputFiles(services.trustedRootFile);
  const rootId = `sha256:${createHash('sha256').update(readFileSync(services.trustedRootFile)).digest('hex')}`;
  await expect(field(page, 'Trust root')).toHaveValue(rootId);
  await page.getByRole('button', { name: 'Verify file' }).click();
  await expect(verdict(page)).toHaveText(/^Verified: sha256:[0-9a-f]{64} signed by the key sha256:[0-9a-f]{64}/, {
    timeout: 60_000,
  });

  await field(page, 'Sigstore bundle').setInputFiles(files.tampered);
  await page.getByRole('button', { name: 'Verify file' }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: .*VERIFY_INCLUSION_PROOF_INVALID/, { timeout: 60_000 });
});
