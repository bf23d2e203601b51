/**
 * The page's routes (shared/cosign/route.ts): the router's parseRoute decodes every parameter as
 * verification links are decoded ("+" stays a plus sign); what the page writes for Inspect and
 * Tree it reads back, and a key given as a url-encoded PEM, a form-encoded PEM or base64url SPKI
 * DER all read as the same key. Runs in Node and in Chromium, where the page runs.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { fromBase64Url, toBase64Url } from '../../../../shared/encoding/base64.ts';
import { parsePublicKey, publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { exportSpki, generateEcdsaKeyPair } from '../../../../shared/crypto/webcrypto.ts';
import { parseVerificationLink } from '../../../../shared/cosign/link.ts';
import { INSPECT_ROUTE, TREE_ROUTE, inspectHash, parseRoute, treeHash } from '../../../../shared/cosign/route.ts';

/** The decoded parameters of `hash` when it opens `route`, else null (what Inspect and Tree ask). */
function readRoute(hash: string, route: string): ReadonlyMap<string, string> | null {
  const read = parseRoute(hash);
  return read.path === route ? read.params : null;
}

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

it('a "+" in a parameter survives the router\'s parse exactly as a verification link parses it', async () => {
  const key = toBase64Url(await spki());
  // Raw query values made of literal "+", its percent-encoded forms and ordinary characters.
  const raw = fc
    .array(fc.constantFrom('+', '%2B', '%2b', 'a', 'Z', '0', '/', ':', '.', '-', '@', '%20', '%25'), {
      minLength: 1,
      maxLength: 24,
    })
    .map((parts) => `r.example/${parts.join('')}`);
  fc.assert(
    fc.property(raw, (image) => {
      const hash = `#/verify?image=${image}&key=${key}`;
      const routed = parseRoute(hash).params.get('image')!;
      expect(routed).toBe(decodeURIComponent(image));
      expect(routed.trim()).toBe(parseVerificationLink(hash).image);
    }),
  );
  expect(parseRoute('#/copy?source=r.example/a+b:c%2Bd&destination=x+y').params.get('source')).toBe(
    'r.example/a+b:c+d',
  );
  expect(parseRoute('#/sign?image=r.example/app:v1+build').params.get('image')).toBe('r.example/app:v1+build');
});

it('parseRoute: the path ("/" for an empty fragment), the query as written, a form-encoded PEM key', async () => {
  expect(parseRoute('')).toEqual({ path: '/', query: '', params: new Map() });
  expect(parseRoute('#/keys')).toEqual({ path: '/keys', query: '', params: new Map() });
  const read = parseRoute('#/verify?image=a%2Cb&annotations=k%3Dv,x=1&bad=%E0%A4%A');
  expect(read.path).toBe('/verify');
  expect(read.query).toBe('image=a%2Cb&annotations=k%3Dv,x=1&bad=%E0%A4%A');
  expect(read.params.get('image')).toBe('a,b');
  expect(read.params.get('bad')).toBe('%E0%A4%A');
  let key = await spki();
  while (!publicKeyPem(key).includes('+')) key = await spki();
  const form = new URLSearchParams({ key: publicKeyPem(key) }).toString();
  expect(parsePublicKey(parseRoute(`#/tree?${form}`).params.get('key')!).spki).toEqual(key);
});
