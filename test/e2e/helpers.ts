/**
 * Helpers for the end-to-end tests: a recorder of every request a page makes (to prove secrets
 * never leave it), temporary files for uploads, and a virtual WebAuthn authenticator.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, type Page, type Request } from '@playwright/test';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Starts recording every request the page (and its workers) make. */
export function recordRequests(page: Page): RecordedRequest[] {
  const seen: RecordedRequest[] = [];
  const onRequest = (r: Request): void => {
    seen.push({ method: r.method(), url: r.url(), headers: r.headers(), body: r.postData() ?? '' });
  };
  page.context().on('request', onRequest);
  return seen;
}

/** Asserts no recorded request carries any of `secrets` in its URL, headers or body. */
export function findLeaks(requests: RecordedRequest[], secrets: string[]): string[] {
  const leaks: string[] = [];
  for (const r of requests) {
    const text = `${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`;
    for (const s of secrets) if (s && text.includes(s)) leaks.push(`${r.method} ${r.url} carries a secret`);
  }
  return leaks;
}

const dir = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-'));
let n = 0;
/** Writes `contents` to a fresh temporary file and returns its path. */
export function tempFile(name: string, contents: string | Uint8Array): string {
  const sub = join(dir, String(n++));
  mkdirSync(sub);
  const path = join(sub, name);
  writeFileSync(path, contents);
  return path;
}

/** Adds a virtual platform authenticator (user verified, resident keys) with or without PRF. */
export async function addVirtualAuthenticator(page: Page, hasPrf: boolean): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      hasPrf,
      automaticPresenceSimulation: true,
    },
  });
}

/**
 * Opens #/sign for `ref` and loads a signing config ("Config file") and the trusted root its
 * services' answers are checked with ("Trusted root file"), which then becomes the "Trust root".
 */
export async function openSignWithServices(
  page: Page,
  origin: string,
  ref: string,
  files: { signingConfig: string; trustedRoot: string },
): Promise<void> {
  const field = (label: string) => page.getByLabel(label, { exact: true });
  await page.goto(`${origin}/#/sign`);
  await field('Image reference').fill(ref);
  await field('Config file').setInputFiles(files.signingConfig);
  await field('Trusted root file').setInputFiles(files.trustedRoot);
  await expect(field('Trust root')).toHaveValue(/^sha256:/);
}
