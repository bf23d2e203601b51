/**
 * The Inspect and Tree routes (shared/cosign/route.ts): what the page writes it reads back,
 * and a key given as a url-encoded PEM, a form-encoded PEM or base64url SPKI DER all read as the
 * same key. Runs in Node and in Chromium, where the page runs.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { fromBase64Url } from '../../../../shared/encoding/base64.ts';
import { parsePublicKey, publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { exportSpki, generateEcdsaKeyPair } from '../../../../shared/crypto/webcrypto.ts';
import { INSPECT_ROUTE, TREE_ROUTE, inspectHash, readRoute, treeHash } from '../../../../shared/cosign/route.ts';

const spki = async () => exportSpki((await generateEcdsaKeyPair('P-256', true)).publicKey);

it('treeHash and inspectHash read back through readRoute, whatever the reference holds', async () => {
  const key = await spki();
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 80 }),
      fc.option(fc.string({ maxLength: 20 })),
      (image, platform) => {
        const tree = readRoute(treeHash(image, key), TREE_ROUTE)!;
        expect(tree.get('image')).toBe(image);
        expect(fromBase64Url(tree.get('key')!)).toEqual(key);
        const inspect = readRoute(inspectHash(image, platform), INSPECT_ROUTE)!;
        expect(inspect.get('image')).toBe(image);
        expect(inspect.get('platform')).toBe(platform ? platform : undefined);
      },
    ),
  );
});

it('a key as url-encoded PEM, as form-encoded PEM (spaces as "+", "+" as %2B) and as base64url SPKI is one key', async () => {
  // Keys until one whose PEM body holds a "+", so the form encoding's two kinds of plus both occur.
  let key = await spki();
  while (!publicKeyPem(key).includes('+')) key = await spki();
  const pem = publicKeyPem(key);
  const form = new URLSearchParams({ image: 'r.example/app:v1', key: pem }).toString();
  expect(form).toContain('-----BEGIN+PUBLIC+KEY-----');
  expect(form).toContain('%2B');
  const forms = [
    `key=${encodeURIComponent(pem)}`,
    form.replace(/^image=[^&]*&/, ''),
    `key=${treeHash('x', key).split('key=')[1]}`,
  ];
  for (const q of forms) {
    const read = readRoute(`#${TREE_ROUTE}?image=r.example%2Fapp%3Av1&${q}`, TREE_ROUTE)!;
    expect(parsePublicKey(read.get('key')!).spki).toEqual(key);
  }
});

it('another route, an empty query, a repeated or undecodable parameter', () => {
  expect(readRoute('#/verify?image=a', TREE_ROUTE)).toBeNull();
  expect(readRoute(`#${TREE_ROUTE}`, TREE_ROUTE)!.size).toBe(0);
  const r = readRoute(`#${TREE_ROUTE}?image=first&image=second&bad=%E0%A4%A`, TREE_ROUTE)!;
  expect(r.get('image')).toBe('first');
  expect(r.get('bad')).toBe('%E0%A4%A');
});
