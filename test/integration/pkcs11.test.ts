/**
 * The relay's PKCS#11 endpoint against real SoftHSM2 tokens (keys made inside the token by
 * pkcs11-tool), through the real app on a loopback socket: listing, signing both payload kinds with
 * P-256, P-384 and RSA keys, every refusal, wrong PINs and the back-off, 100 concurrent signatures
 * on one key, a token deleted between listing and signing, a module that is not one, a PIN that
 * locks (SoftHSM behind test/rig/pin-lock-module.c, since SoftHSM never locks), the start-up checks
 * of server/main.ts, and signatures made through the endpoint verified by cosign 2.5, cosign 3.1 and
 * skopeo with the key's public key.
 */
import { spawn } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { Site } from '../../server/site.ts';
import { loadPkcs11Module, type Pkcs11KeyInfo, type Pkcs11Provider } from '../../server/pkcs11/module.ts';
import { formatPkcs11Uri, parsePkcs11Uri } from '../../server/pkcs11/uri.ts';
import { Pkcs11Error } from '../../shared/errors.ts';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { buildSimpleSigningPayload } from '../../shared/cosign/payload.ts';
import { buildSignStatement, IN_TOTO_PAYLOAD_TYPE, pae } from '../../shared/cosign/dsse.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import { pushSampleImage, skopeoAccess } from '../rig/images.ts';
import { buildPinLockModule, createSoftHsmToken, type SoftHsmToken } from '../rig/softhsm.ts';
import { cosignVerifyArgs, run, skopeoPolicyPull } from '../rig/tools.ts';
import { useRig } from './rig-context.ts';

const rig = useRig({ offlineCosign3: true });
const { regs, client } = rig;
const API_TOKEN = 'it-api-token-3f9c2b7d51e04a86';
const PIN = 'it-pin-5831';
const DIGEST = `sha256:${'3c'.repeat(32)}`;
const IMAGE = `${regs.tls.host}/pkcs11/app:v1`;

let hsm: SoftHsmToken;
let provider: Pkcs11Provider;
let base: string;
const audit: string[] = [];
let keys: Pkcs11KeyInfo[];
let removableUri: string;

const headers = (extra: Record<string, string> = {}) => ({
  Authorization: `Bearer ${API_TOKEN}`,
  'Content-Type': 'application/json',
  ...extra,
});

/** POST /sign of a Docker Hub simple-signing payload with `uri` and `pin`: [status, code, message]. */
async function signAlpine(url: string, uri: string, pin: string): Promise<[number, string | undefined, string]> {
  const res = await fetch(`${url}/sign`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ uri, pin, payload: b64(legacy(DIGEST, 'docker.io/library/alpine')) }),
  });
  const body = (await res.json()) as { code?: string; message?: string };
  return [res.status, body.code, body.message ?? ''];
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

async function sign(
  body: Record<string, unknown>,
  extra: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, string>; res: Response }> {
  const res = await fetch(`${base}/pkcs11/sign`, {
    method: 'POST',
    headers: headers(extra),
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, string>, res };
}

function keyOf(algorithm: string): Pkcs11KeyInfo {
  const k = keys.find((x) => x.algorithm === algorithm && x.token.label === hsm.tokenLabel);
  if (!k) throw new Error(`no ${algorithm} key listed`);
  return k;
}

function verifies(key: Pkcs11KeyInfo, data: Uint8Array, signatureB64: string): boolean {
  const pub = createPublicKey(key.publicKeyPem);
  const sig = Buffer.from(signatureB64, 'base64');
  return verify('sha256', data, key.algorithm.startsWith('ECDSA') ? { key: pub, dsaEncoding: 'der' } : pub, sig);
}

const legacy = (digest = DIGEST, identity = IMAGE) => buildSimpleSigningPayload(identity, digest);
const dsse = (digest = DIGEST) => pae(IN_TOTO_PAYLOAD_TYPE, buildSignStatement(digest));

beforeAll(async () => {
  hsm = await createSoftHsmToken({
    tokenLabel: 'cosign-web it',
    pin: PIN,
    keys: [
      { label: 'it p256', id: '01', type: 'EC:prime256v1' },
      { label: 'it rsa', id: '02', type: 'rsa:2048' },
      { label: 'it p384', id: '03', type: 'EC:secp384r1' },
    ],
  });
  await hsm.addToken({
    tokenLabel: 'cosign-web removable',
    pin: PIN,
    keys: [{ label: 'removable p256', id: 'a1', type: 'EC:prime256v1' }],
  });
  // SoftHSM reads its configuration at C_Initialize, in this process.
  process.env['SOFTHSM2_CONF'] = hsm.conf;
  provider = await loadPkcs11Module(hsm.module);
  // The page's origin is the one it is served on: known once listening.
  const site = new Site();
  const app = createApp({
    staticRoot: hsm.dir,
    relay: { allowedRegistries: [regs.tls.host], privateRegistries: [regs.tls.host] },
    pkcs11: { provider, apiToken: API_TOKEN, backoff: { baseMs: 1000 }, log: (l) => audit.push(l) },
    site,
  });
  base = (await rig.serve(app)).origin;
  site.listening(Number(new URL(base).port));
  const listed = await fetch(`${base}/pkcs11/keys`, { headers: headers() });
  keys = ((await listed.json()) as { keys: Pkcs11KeyInfo[] }).keys;
  removableUri = keys.find((k) => k.token.label === 'cosign-web removable')!.uri;
}, 120_000);

afterAll(async () => {
  provider?.close();
  await hsm?.cleanup();
});

describe('GET /pkcs11/keys', () => {
  it('lists every key of every token with its URI, algorithm, public key and fingerprint, never the PIN', async () => {
    const res = await fetch(`${base}/pkcs11/keys`, { headers: headers() });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    expect(text).not.toContain(PIN);
    const body = JSON.parse(text) as { pinConfigured: boolean; keys: Pkcs11KeyInfo[] };
    expect(body.pinConfigured).toBe(false);
    expect(body.keys).toHaveLength(4);
    for (const made of hsm.keys) {
      const k = body.keys.find((x) => x.label === made.label)!;
      expect(k.algorithm).toBe(made.algorithm);
      expect(k.token).toEqual({
        label: hsm.tokenLabel,
        manufacturer: hsm.manufacturer,
        model: hsm.model,
        serial: hsm.serial,
      });
      // The public key pkcs11-tool exported, and its SHA-256 fingerprint.
      expect(parsePublicKey(k.publicKeyPem).spki).toEqual(made.spki);
      expect(k.fingerprint).toBe(createHash('sha256').update(made.spki).digest('hex'));
      expect(k.uri).toBe(
        formatPkcs11Uri({
          token: hsm.tokenLabel,
          manufacturer: hsm.manufacturer,
          serial: hsm.serial,
          model: hsm.model,
          object: made.label,
          id: Buffer.from(made.id, 'hex'),
          type: 'private',
        }),
      );
      expect(k.uri).toContain(`id=%${made.id.toUpperCase()};type=private`);
      expect(parsePkcs11Uri(k.uri).token).toBe(hsm.tokenLabel);
    }
    expect(keyOf('ECDSA P-256').uri).toMatch(/^pkcs11:token=cosign-web%20it;manufacturer=SoftHSM%20project;serial=/);
  });

  it('needs the API token and the same origin', async () => {
    const none = await fetch(`${base}/pkcs11/keys`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await none.json()) as { code: string }).code).toBe('PKCS11_UNAUTHORIZED');
    const wrong = await fetch(`${base}/pkcs11/keys`, { headers: { Authorization: `Bearer ${API_TOKEN}x` } });
    expect(((await wrong.json()) as { code: string }).code).toBe('PKCS11_UNAUTHORIZED');
    const basic = await fetch(`${base}/pkcs11/keys`, { headers: { Authorization: `Basic ${API_TOKEN}` } });
    expect(basic.status).toBe(401);
    const cross = await fetch(`${base}/pkcs11/keys`, { headers: headers({ Origin: 'https://evil.example' }) });
    expect(cross.status).toBe(403);
    const site = await fetch(`${base}/pkcs11/sign`, {
      method: 'POST',
      headers: headers({ 'Sec-Fetch-Site': 'cross-site' }),
      body: JSON.stringify({ uri: keyOf('ECDSA P-256').uri, pin: PIN, payload: b64(legacy()) }),
    });
    expect(site.status).toBe(403);
    const same = await fetch(`${base}/pkcs11/keys`, { headers: headers({ Origin: base }) });
    expect(same.status).toBe(200);
  });
});

describe('POST /pkcs11/sign', () => {
  it.each(['ECDSA P-256', 'ECDSA P-384', 'RSA 2048'])('%s signs both payload kinds; each verifies', async (alg) => {
    const key = keyOf(alg);
    for (const data of [legacy(), dsse()]) {
      const r = await sign({ uri: key.uri, pin: PIN, payload: b64(data) });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(verifies(key, data, r.json['signature']!)).toBe(true);
      // ...and over nothing else
      expect(verifies(key, new Uint8Array([...data, 0x20]), r.json['signature']!)).toBe(false);
    }
  });

  it('writes one audit line per request: key, digest, identity, client; never the PIN or the payload', async () => {
    audit.length = 0;
    const key = keyOf('ECDSA P-256');
    const data = legacy();
    expect((await sign({ uri: key.uri, pin: PIN, payload: b64(data) })).status).toBe(200);
    expect((await sign({ uri: key.uri, pin: 'wrong-pin', payload: b64(data) })).status).toBe(401);
    expect(audit).toHaveLength(2);
    const [ok, refused] = audit as [string, string];
    expect(ok).toMatch(
      new RegExp(
        `^pkcs11 sign time=\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z key=${key.uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} digest=${DIGEST} identity=${IMAGE} kind=simple-signing client=127\\.0\\.0\\.1 ok$`,
      ),
    );
    expect(refused).toMatch(/ PKCS11_PIN_INCORRECT$/);
    for (const line of audit) {
      expect(line).not.toContain(PIN);
      expect(line).not.toContain('wrong-pin');
      expect(line).not.toContain(b64(data));
      expect(line).not.toContain('cosign container image signature');
    }
    // A correct PIN after one wrong one: no back-off left behind.
    expect((await sign({ uri: key.uri, pin: PIN, payload: b64(data) })).status).toBe(200);
  });

  it('refuses every request it must not sign, each with its own code, and keeps serving', async () => {
    const key = keyOf('ECDSA P-256');
    const uri = key.uri;
    const ok = { uri, pin: PIN, payload: b64(legacy()) };
    const cases: [string, Record<string, unknown>, number, string][] = [
      [
        'arbitrary bytes',
        { ...ok, payload: b64(new TextEncoder().encode('sign me, please')) },
        422,
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'a raw SHA-256 digest',
        { ...ok, payload: b64(createHash('sha256').update('x').digest()) },
        422,
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'JSON of another kind',
        { ...ok, payload: b64(new TextEncoder().encode('{"critical":{}}')) },
        422,
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'a DSSE statement of another predicate',
        {
          ...ok,
          payload: b64(
            pae(
              IN_TOTO_PAYLOAD_TYPE,
              new TextEncoder().encode(
                JSON.stringify({
                  _type: 'https://in-toto.io/Statement/v1',
                  subject: [{ digest: { sha256: '3c'.repeat(32) } }],
                  predicateType: 'https://slsa.dev/provenance/v1',
                  predicate: {},
                }),
              ),
            ),
          ),
        },
        422,
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'DSSE of another payload type',
        { ...ok, payload: b64(pae('text/plain', new TextEncoder().encode('hello'))) },
        422,
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'a DSSE encoding with a wrong length',
        { ...ok, payload: b64(new Uint8Array([...dsse(), 0x20])) },
        422,
        'PKCS11_PAYLOAD_REFUSED',
      ],
      ['a sha512 digest', { ...ok, payload: b64(legacy(`sha512:${'ab'.repeat(64)}`)) }, 422, 'PKCS11_DIGEST_INVALID'],
      [
        'an upper-case digest',
        { ...ok, payload: b64(legacy(`sha256:${'AB'.repeat(32)}`)) },
        422,
        'PKCS11_DIGEST_INVALID',
      ],
      ['a short digest', { ...ok, payload: b64(legacy('sha256:abcd')) }, 422, 'PKCS11_DIGEST_INVALID'],
      [
        'a DSSE subject digest of the wrong form',
        { ...ok, payload: b64(dsse(`sha256:${'zz'.repeat(32)}`)) },
        422,
        'PKCS11_DIGEST_INVALID',
      ],
      [
        'an image in a registry the relay does not reach',
        { ...ok, payload: b64(legacy(DIGEST, 'registry.example.com/app:v1')) },
        403,
        'PKCS11_REGISTRY_NOT_ALLOWED',
      ],
      [
        'an image on Docker Hub when only the rig registry is allowed',
        { ...ok, payload: b64(legacy(DIGEST, 'alpine')) },
        403,
        'PKCS11_REGISTRY_NOT_ALLOWED',
      ],
      ['no PIN', { uri, payload: ok.payload }, 401, 'PKCS11_PIN_REQUIRED'],
      ['an empty PIN', { ...ok, pin: '' }, 401, 'PKCS11_PIN_REQUIRED'],
      ['an unknown key id', { ...ok, uri: uri.replace('id=%01', 'id=%7F') }, 404, 'PKCS11_KEY_NOT_FOUND'],
      [
        'an unknown token',
        { ...ok, uri: uri.replace('token=cosign-web%20it', 'token=nope') },
        404,
        'PKCS11_TOKEN_NOT_PRESENT',
      ],
      ['a public key URI', { ...ok, uri: uri.replace('type=private', 'type=public') }, 422, 'PKCS11_URI_INVALID'],
      ['a URI that is not one', { ...ok, uri: 'file:///etc/passwd' }, 422, 'PKCS11_URI_INVALID'],
      ['a URI carrying a PIN', { ...ok, uri: `${uri}?pin-value=${PIN}` }, 422, 'PKCS11_URI_INVALID'],
      ['a URI choosing the module', { ...ok, uri: `${uri}?module-path=/tmp/evil.so` }, 422, 'PKCS11_URI_INVALID'],
      ['a URI naming no key', { ...ok, uri: 'pkcs11:token=cosign-web%20it;type=private' }, 422, 'PKCS11_URI_INVALID'],
      ['a mechanism chosen by the request', { ...ok, mechanism: 'CKM_RSA_X_509' }, 400, 'PKCS11_REQUEST_INVALID'],
      ['a payload that is not base64', { ...ok, payload: '%%%' }, 400, 'PKCS11_REQUEST_INVALID'],
      ['a PIN that is not a string', { ...ok, pin: 1234 }, 400, 'PKCS11_REQUEST_INVALID'],
    ];
    for (const [what, body, status, code] of cases) {
      const r = await sign(body);
      expect([what, r.status, r.json['code']]).toEqual([what, status, code]);
      expect(r.json['message']).toMatch(/\w/);
      expect(JSON.stringify(r.json)).not.toContain(PIN);
    }
    const notJson = await fetch(`${base}/pkcs11/sign`, { method: 'POST', headers: headers(), body: '{' });
    expect([notJson.status, ((await notJson.json()) as { code: string }).code]).toEqual([
      400,
      'PKCS11_REQUEST_INVALID',
    ]);
    const big = await fetch(`${base}/pkcs11/sign`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ ...ok, payload: 'A'.repeat(70 * 1024) }),
    });
    expect([big.status, ((await big.json()) as { code: string }).code]).toEqual([413, 'PKCS11_REQUEST_TOO_LARGE']);
    // Still serving, and none of the refusals counted as a wrong PIN.
    expect((await sign(ok)).status).toBe(200);
  });

  it('counts wrong PINs per token: 401 three times, then 429 with Retry-After without asking the token, then a correct PIN resets', async () => {
    const key = keyOf('RSA 2048');
    const other = keyOf('ECDSA P-256'); // same token
    const body = { uri: key.uri, pin: '0000-wrong', payload: b64(legacy()) };
    for (let i = 0; i < 3; i++) {
      const r = await sign(body);
      expect([r.status, r.json['code']]).toEqual([401, 'PKCS11_PIN_INCORRECT']);
    }
    const t0 = Date.now();
    const blocked = await sign({ ...body, pin: PIN });
    expect([blocked.status, blocked.json['code']]).toEqual([429, 'PKCS11_BACKOFF']);
    expect(blocked.res.headers.get('retry-after')).toBe('1');
    const sameToken = await sign({ uri: other.uri, pin: PIN, payload: b64(legacy()) });
    expect(sameToken.status).toBe(429);
    // Another token is not affected.
    const elsewhere = await sign({ uri: removableUri, pin: PIN, payload: b64(legacy()) });
    expect(elsewhere.status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - t0))));
    // The wait doubles with each further failure.
    const fourth = await sign(body);
    expect(fourth.status).toBe(401);
    const again = await sign({ ...body, pin: PIN });
    expect([again.status, again.res.headers.get('retry-after')]).toEqual([429, '2']);
    await new Promise((r) => setTimeout(r, 2100));
    const good = await sign({ ...body, pin: PIN });
    expect(good.status).toBe(200);
    expect(verifies(key, legacy(), good.json['signature']!)).toBe(true);
    // Reset: one wrong PIN is again just a 401.
    expect((await sign(body)).status).toBe(401);
    expect((await sign({ ...body, pin: PIN })).status).toBe(200);
  });

  it('100 concurrent signatures on one key all succeed and all verify', async () => {
    const key = keyOf('ECDSA P-256');
    const payloads = Array.from({ length: 100 }, (_, i) =>
      i % 2 === 0
        ? legacy(`sha256:${i.toString(16).padStart(64, '0')}`)
        : dsse(`sha256:${i.toString(16).padStart(64, '0')}`),
    );
    const results = await Promise.all(payloads.map((p) => sign({ uri: key.uri, pin: PIN, payload: b64(p) })));
    expect(results.map((r) => r.status)).toEqual(payloads.map(() => 200));
    results.forEach((r, i) => expect(verifies(key, payloads[i]!, r.json['signature']!)).toBe(true));
  });

  it('100 concurrent requests on one token, right and wrong PINs mixed: each fails or succeeds cleanly', async () => {
    const key = keyOf('ECDSA P-384');
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        sign({ uri: key.uri, pin: i % 10 === 9 ? 'wrong-pin' : PIN, payload: b64(legacy()) }).then((r) => ({ i, r })),
      ),
    );
    for (const { i, r } of results) {
      if (i % 10 === 9) expect(['PKCS11_PIN_INCORRECT', 'PKCS11_BACKOFF']).toContain(r.json['code']);
      else if (r.status === 200) expect(verifies(key, legacy(), r.json['signature']!)).toBe(true);
      // A right PIN is never refused as wrong: a wrong PIN in one request never leaks into another's login.
      else expect(r.json['code']).toBe('PKCS11_BACKOFF');
    }
    expect(results.filter(({ i, r }) => i % 10 !== 9 && r.status === 200).length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1100));
    // Let the back-off from the wrong ones pass before the next test.
    for (let wait = 1; ; wait *= 2) {
      const r = await sign({ uri: key.uri, pin: PIN, payload: b64(legacy()) });
      if (r.status === 200) break;
      expect(r.status).toBe(429);
      await new Promise((res) => setTimeout(res, Number(r.res.headers.get('retry-after')) * 1000 + 50));
      expect(wait).toBeLessThan(64);
    }
  }, 120_000);

  it('a token deleted between listing and signing: 404 PKCS11_TOKEN_NOT_PRESENT, and the others keep working', async () => {
    expect(keys.some((k) => k.uri === removableUri)).toBe(true);
    await hsm.deleteToken('cosign-web removable');
    const r = await sign({ uri: removableUri, pin: PIN, payload: b64(legacy()) });
    expect([r.status, r.json['code']]).toEqual([404, 'PKCS11_TOKEN_NOT_PRESENT']);
    const listed = (await (await fetch(`${base}/pkcs11/keys`, { headers: headers() })).json()) as {
      keys: Pkcs11KeyInfo[];
    };
    expect(listed.keys.map((k) => k.label).sort()).toEqual(['it p256', 'it p384', 'it rsa']);
    expect((await sign({ uri: keyOf('ECDSA P-256').uri, pin: PIN, payload: b64(legacy()) })).status).toBe(200);
  });
});

describe('configuration', () => {
  it('without PKCS#11, /pkcs11/* answers 404 PKCS11_NOT_CONFIGURED', async () => {
    const app = createApp({ staticRoot: hsm.dir });
    for (const path of ['/pkcs11/keys', '/pkcs11/sign']) {
      const res = await app.request(path, { method: path.endsWith('sign') ? 'POST' : 'GET', headers: headers() });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('PKCS11_NOT_CONFIGURED');
    }
  });

  it('a module that fails to load: loadPkcs11Module says PKCS11_MODULE_FAILED, the app answers 502', async () => {
    for (const path of ['/etc/hostname', join(hsm.dir, 'missing.so')]) {
      const e = await loadPkcs11Module(path).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(Pkcs11Error);
      expect((e as Pkcs11Error).code).toBe('PKCS11_MODULE_FAILED');
      const app = createApp({
        staticRoot: hsm.dir,
        pkcs11: { provider: e as Pkcs11Error, apiToken: API_TOKEN, log: () => undefined },
      });
      const keysRes = await app.request('/pkcs11/keys', { headers: headers() });
      expect([keysRes.status, ((await keysRes.json()) as { code: string }).code]).toEqual([
        502,
        'PKCS11_MODULE_FAILED',
      ]);
      const signRes = await app.request('/pkcs11/sign', {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({ uri: keyOf('ECDSA P-256').uri, pin: PIN, payload: b64(legacy()) }),
      });
      expect(signRes.status).toBe(502);
      // Auth still comes first.
      expect((await app.request('/pkcs11/keys')).status).toBe(401);
    }
  });

  it('with PKCS11_PIN on the server: pinConfigured, no PIN in the request, and a request carrying one is refused', async () => {
    const app = createApp({
      staticRoot: hsm.dir,
      relay: { allowedRegistries: [regs.tls.host], privateRegistries: [regs.tls.host] },
      pkcs11: { provider, apiToken: API_TOKEN, pin: PIN, log: () => undefined },
    });
    const listed = (await (await app.request('/pkcs11/keys', { headers: headers() })).json()) as {
      pinConfigured: boolean;
    };
    expect(listed.pinConfigured).toBe(true);
    const key = keyOf('ECDSA P-256');
    const post = (body: unknown) =>
      app.request('/pkcs11/sign', { method: 'POST', headers: headers(), body: JSON.stringify(body) });
    const ok = await post({ uri: key.uri, payload: b64(dsse()) });
    expect(ok.status).toBe(200);
    expect(verifies(key, dsse(), ((await ok.json()) as { signature: string }).signature)).toBe(true);
    const withPin = await post({ uri: key.uri, pin: PIN, payload: b64(dsse()) });
    expect([withPin.status, ((await withPin.json()) as { code: string }).code]).toEqual([
      400,
      'PKCS11_REQUEST_INVALID',
    ]);
  });
});

describe('server/main.ts with PKCS11_MODULE', () => {
  let dist: string;
  beforeAll(async () => {
    dist = await rig.tempDir('cosign-web-pkcs11-dist-');
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>cosign-web</title>');
  });

  /** Starts the server; resolves with its port once it listens, or with its exit code and output. */
  function start(
    env: Record<string, string>,
    preload: string[] = [],
  ): Promise<{
    port?: number;
    code?: number;
    pid: number;
    output: string;
    /** All output so far (`output` is what there was when it started or exited). */
    read(): string;
    signal(sig: NodeJS.Signals): void;
    stop(): void;
  }> {
    const child = spawn(process.execPath, ['--import', 'tsx', ...preload, 'server/main.ts'], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        PORT: '0',
        HOST: '127.0.0.1',
        STATIC_ROOT: dist,
        EMBEDDED_REGISTRY: 'off',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    return new Promise((resolve) => {
      const stop = () => child.kill('SIGTERM');
      const pid = child.pid ?? -1;
      const read = () => output;
      const signal = (sig: NodeJS.Signals) => child.kill(sig);
      const onData = (b: Buffer) => {
        output += b.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (m) resolve({ port: Number(m[1]), pid, output, read, signal, stop });
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => resolve({ code: code ?? -1, pid, output, read, signal, stop }));
    });
  }

  it('refuses to start without PKCS11_API_TOKEN, with a relative module path, or with a back-off under a second', async () => {
    // Exit status 2 (a configuration error) is what a supervisor acts on; the sentence says which.
    const noToken = await start({ PKCS11_MODULE: hsm.module, SOFTHSM2_CONF: hsm.conf });
    expect([noToken.code, noToken.port]).toEqual([2, undefined]);
    expect(noToken.output).toMatch(/PKCS11_API_TOKEN must be too/);
    const shortToken = await start({ PKCS11_MODULE: hsm.module, SOFTHSM2_CONF: hsm.conf, PKCS11_API_TOKEN: 'short' });
    expect([shortToken.code, shortToken.port]).toEqual([2, undefined]);
    expect(shortToken.output).toMatch(/PKCS11_API_TOKEN must be too/);
    const relative = await start({ PKCS11_MODULE: 'libsofthsm2.so', PKCS11_API_TOKEN: API_TOKEN });
    expect([relative.code, relative.port]).toEqual([2, undefined]);
    expect(relative.output).toMatch(/PKCS11_MODULE must be an absolute path/);
    // A back-off shorter than a second would let PINs be guessed at the token's own pace.
    for (const PKCS11_BACKOFF_MS of ['500', 'soon']) {
      const s = await start({
        PKCS11_MODULE: hsm.module,
        SOFTHSM2_CONF: hsm.conf,
        PKCS11_API_TOKEN: API_TOKEN,
        PKCS11_BACKOFF_MS,
      });
      expect([s.code, s.port], s.output).toEqual([2, undefined]);
      expect(s.output).toMatch(/PKCS11_BACKOFF_MS must be/);
    }
  });

  it('takes PKCS11_API_TOKEN and PKCS11_PIN out of its environment once read, so no child inherits them', async () => {
    // A preload answers SIGUSR2 with the PKCS11_* names left in process.env, as a child would inherit it.
    const probe = `data:text/javascript,process.on('SIGUSR2',()=>console.log('env-left:'+JSON.stringify(Object.keys(process.env).filter((k)=>k.startsWith('PKCS11_')))))`;
    const s = await start(
      { PKCS11_MODULE: hsm.module, SOFTHSM2_CONF: hsm.conf, PKCS11_API_TOKEN: API_TOKEN, PKCS11_PIN: PIN },
      ['--import', probe],
    );
    try {
      expect(s.port, s.output).toBeDefined();
      const left = new Promise<string>((resolve) => {
        const timer = setInterval(() => {
          const m = /env-left:(\[.*\])/.exec(s.read());
          if (m) {
            clearInterval(timer);
            resolve(m[1]!);
          }
        }, 20);
      });
      s.signal('SIGUSR2');
      expect(JSON.parse(await left)).toEqual(['PKCS11_MODULE']);
      // Still configured from what it read: the server PIN signs without one in the request.
      const listed = await fetch(`http://127.0.0.1:${s.port}/pkcs11/keys`, { headers: headers() });
      expect(((await listed.json()) as { pinConfigured: boolean }).pinConfigured).toBe(true);
    } finally {
      s.stop();
    }
  });

  /** The NAME=value entries of a process's /proc/<pid>/environ: what any process of this user (or root) reads. */
  const environOf = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');

  it('leaves neither PKCS11_PIN nor PKCS11_API_TOKEN readable in /proc/<pid>/environ', async () => {
    const s = await start({
      PKCS11_MODULE: hsm.module,
      SOFTHSM2_CONF: hsm.conf,
      PKCS11_API_TOKEN: API_TOKEN,
      PKCS11_PIN: PIN,
    });
    try {
      expect(s.port, s.output).toBeDefined();
      const environ = environOf(s.pid);
      // What is there: the module's path and the other settings it was started with.
      expect(environ).toContain(`PKCS11_MODULE=${hsm.module}`);
      expect(environ).toContain('PORT=0');
      // What is not: the variables' names and their values, anywhere in the block.
      const block = environ.join('\n');
      for (const leak of ['PKCS11_PIN=', 'PKCS11_API_TOKEN=', API_TOKEN, `=${PIN}`]) expect(block).not.toContain(leak);
      expect(s.output).not.toMatch(/could not be wiped/);
      // Still configured from what it read.
      const listed = await fetch(`http://127.0.0.1:${s.port}/pkcs11/keys`, { headers: headers() });
      expect(((await listed.json()) as { pinConfigured: boolean }).pinConfigured).toBe(true);
    } finally {
      s.stop();
    }
  });

  it('reads PKCS11_API_TOKEN_FILE and PKCS11_PIN_FILE once, without their final newline', async () => {
    const tokenFile = join(dist, 'api-token');
    const pinFile = join(dist, 'pin');
    await writeFile(tokenFile, `${API_TOKEN}\n`);
    await writeFile(pinFile, `${PIN}\r\n`);
    const s = await start({
      PKCS11_MODULE: hsm.module,
      SOFTHSM2_CONF: hsm.conf,
      PKCS11_API_TOKEN_FILE: tokenFile,
      PKCS11_PIN_FILE: pinFile,
    });
    try {
      expect(s.port, s.output).toBeDefined();
      const block = environOf(s.pid).join('\n');
      expect(block).toContain(`PKCS11_PIN_FILE=${pinFile}`);
      expect(block).not.toContain(API_TOKEN);
      // Read once: changing the files later changes nothing.
      await writeFile(tokenFile, 'another-token-of-enough-length');
      const listed = await fetch(`http://127.0.0.1:${s.port}/pkcs11/keys`, { headers: headers() });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as { pinConfigured: boolean }).pinConfigured).toBe(true);
      // The PIN from the file (its \r\n dropped) logs in: a signature without a PIN in the request.
      const key = keyOf('ECDSA P-256');
      const signed = await fetch(`http://127.0.0.1:${s.port}/pkcs11/sign`, {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({ uri: key.uri, payload: b64(dsse()) }),
      });
      expect(signed.status).toBe(200);
      expect(verifies(key, dsse(), ((await signed.json()) as { signature: string }).signature)).toBe(true);
    } finally {
      s.stop();
    }
  });

  it('refuses to start, with a sentence, when a secret file cannot be read or a secret is set twice', async () => {
    const missing = join(dist, 'no-such-pin');
    const unreadable = await start({
      PKCS11_MODULE: hsm.module,
      PKCS11_API_TOKEN: API_TOKEN,
      PKCS11_PIN_FILE: missing,
    });
    expect([unreadable.code, unreadable.port]).toEqual([2, undefined]);
    expect(unreadable.output).toContain(`PKCS11_PIN_FILE names ${missing}, which could not be read (ENOENT).`);
    const empty = join(dist, 'empty-token');
    await writeFile(empty, '\n');
    const blank = await start({ PKCS11_MODULE: hsm.module, PKCS11_API_TOKEN_FILE: empty });
    expect([blank.code, blank.output]).toEqual([
      2,
      expect.stringContaining(`PKCS11_API_TOKEN_FILE names ${empty}, which is empty.`),
    ]);
    const twice = await start({ PKCS11_MODULE: hsm.module, PKCS11_API_TOKEN: API_TOKEN, PKCS11_API_TOKEN_FILE: empty });
    expect([twice.code, twice.output]).toEqual([
      2,
      expect.stringContaining('PKCS11_API_TOKEN and PKCS11_API_TOKEN_FILE are both set'),
    ]);
  });

  it('starts with a module that is not one, says why, and answers 502 PKCS11_MODULE_FAILED', async () => {
    const s = await start({ PKCS11_MODULE: '/etc/hostname', PKCS11_API_TOKEN: API_TOKEN });
    try {
      expect(s.port).toBeDefined();
      expect(s.output).toMatch(/pkcs11: The PKCS#11 module \/etc\/hostname could not be loaded/);
      const res = await fetch(`http://127.0.0.1:${s.port}/pkcs11/keys`, { headers: headers() });
      const text = await res.text();
      expect([res.status, (JSON.parse(text) as { code: string }).code]).toEqual([502, 'PKCS11_MODULE_FAILED']);
      // The path and the loader's own words are in the server log, never in an answer.
      expect(JSON.parse(text)).toEqual({
        code: 'PKCS11_MODULE_FAILED',
        message: 'The PKCS#11 module could not be loaded.',
      });
      const signed = await fetch(`http://127.0.0.1:${s.port}/pkcs11/sign`, {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({ uri: 'pkcs11:token=x;id=%01', pin: PIN, payload: 'e30=' }),
      });
      const signedText = await signed.text();
      expect(signed.status).toBe(502);
      // The dynamic loader's words, as logged ("/etc/hostname: file too short" or the like).
      const loader = /could not be loaded: (.+?) \/pkcs11\/\* will answer/.exec(s.output)?.[1] ?? '';
      expect(loader).toContain('/etc/hostname');
      for (const leak of ['/etc/hostname', loader, 'could not be loaded:']) {
        expect(text).not.toContain(leak);
        expect(signedText).not.toContain(leak);
      }
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
    } finally {
      s.stop();
    }
  });

  it('a token whose PIN locks after 3 tries: 401 twice, then 423 PKCS11_PIN_FINAL_TRY without trying, so it never locks', async () => {
    const lockHsm = await createSoftHsmToken({
      tokenLabel: 'cosign-web lock',
      pin: PIN,
      keys: [{ label: 'lock p256', id: '01', type: 'EC:prime256v1' }],
    });
    const module = await buildPinLockModule(lockHsm.dir, 3);
    const s = await start({ PKCS11_MODULE: module, PKCS11_API_TOKEN: API_TOKEN, SOFTHSM2_CONF: lockHsm.conf });
    try {
      expect(s.port, s.output).toBeDefined();
      const url = `http://127.0.0.1:${s.port}/pkcs11`;
      const listed = (await (await fetch(`${url}/keys`, { headers: headers() })).json()) as { keys: Pkcs11KeyInfo[] };
      expect(listed.keys.map((k) => k.label)).toEqual(['lock p256']);
      const post = async (pin: string) => (await signAlpine(url, listed.keys[0]!.uri, pin)).slice(0, 2);
      // The default relay allowlist has Docker Hub; the right PIN signs first.
      expect(await post(PIN)).toEqual([200, undefined]);
      expect(await post('wrong-1')).toEqual([401, 'PKCS11_PIN_INCORRECT']);
      expect(await post('wrong-2')).toEqual([401, 'PKCS11_PIN_INCORRECT']);
      // The token now reports CKF_USER_PIN_FINAL_TRY: a third wrong PIN would lock it, so none is tried.
      expect(await post('wrong-3')).toEqual([423, 'PKCS11_PIN_FINAL_TRY']);
      expect(await post('wrong-4')).toEqual([423, 'PKCS11_PIN_FINAL_TRY']);
      expect(await post(PIN)).toEqual([423, 'PKCS11_PIN_FINAL_TRY']);
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
      expect(s.output).not.toContain(PIN);
    } finally {
      s.stop();
      await lockHsm.cleanup();
    }
  });

  it('a token that already counted wrong PINs elsewhere: its last try is not made, even with the right PIN', async () => {
    const lockHsm = await createSoftHsmToken({
      tokenLabel: 'cosign-web final',
      pin: PIN,
      keys: [{ label: 'final p256', id: '01', type: 'EC:prime256v1' }],
    });
    // Locks after 3 wrong PINs, 2 of them typed before this server started.
    const module = await buildPinLockModule(lockHsm.dir, 3, 2);
    const s = await start({ PKCS11_MODULE: module, PKCS11_API_TOKEN: API_TOKEN, SOFTHSM2_CONF: lockHsm.conf });
    try {
      expect(s.port, s.output).toBeDefined();
      const url = `http://127.0.0.1:${s.port}/pkcs11`;
      const listed = (await (await fetch(`${url}/keys`, { headers: headers() })).json()) as { keys: Pkcs11KeyInfo[] };
      expect(listed.keys.map((k) => k.label)).toEqual(['final p256']);
      const post = (pin: string) => signAlpine(url, listed.keys[0]!.uri, pin);
      const [status, code, message] = await post('wrong');
      expect([status, code]).toEqual([423, 'PKCS11_PIN_FINAL_TRY']);
      expect(message).toMatch(/^One more wrong PIN would lock this token/);
      expect((await post(PIN)).slice(0, 2)).toEqual([423, 'PKCS11_PIN_FINAL_TRY']);
    } finally {
      s.stop();
      await lockHsm.cleanup();
    }
  });
});

describe('signatures made through the endpoint, verified by the real tools', () => {
  /** A Signer that signs through POST /pkcs11/sign, as the page's does. */
  function endpointSigner(key: Pkcs11KeyInfo): Signer {
    const info = parsePublicKey(key.publicKeyPem);
    return {
      algorithm: info.algorithm,
      spki: info.spki,
      async sign(data) {
        const r = await sign({ uri: key.uri, pin: PIN, payload: b64(data) });
        if (r.status !== 200) throw new Error(`sign: ${r.status} ${JSON.stringify(r.json)}`);
        return new Uint8Array(Buffer.from(r.json['signature']!, 'base64'));
      },
    };
  }

  it.each(['ECDSA P-256', 'ECDSA P-384', 'RSA 2048'])(
    '%s: cosign 2.5, cosign 3.1 and skopeo verify both formats',
    async (alg) => {
      const key = keyOf(alg);
      const pub = join(rig.home.dir, `${alg.replace(/\W/g, '-')}.pub`);
      await writeFile(pub, key.publicKeyPem);
      const repo = `pkcs11/${alg.toLowerCase().replace(/\W/g, '-')}`;
      const image = await pushSampleImage(rig.tls, repo, 'v1');
      const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
      const result = await signImage({
        client,
        signer: endpointSigner(key),
        plan,
        dockerReference: `${regs.tls.host}/${repo}:v1`,
        formats: { legacy: true, bundle: true },
      });
      expect(result.digest).toBe(image.digest);
      const env = rig.env();
      const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref), { env });
      expect(v2.code, `cosign 2.5 verify (${alg}): ${v2.stderr}`).toBe(0);
      const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', rig.offline.trustedRoot]), {
        env,
      });
      expect(v3.code, `cosign 3.1 verify (${alg}): ${v3.stderr}`).toBe(0);
      const access = await skopeoAccess(rig.tls, rig.home.dir);
      const pulled = await skopeoPolicyPull(rig.home, access, pub, `${regs.tls.host}/${repo}:v1`, {
        identity: { type: 'matchRepoDigestOrExact' },
      });
      expect(pulled.code, `skopeo (${alg}): ${pulled.stderr}`).toBe(0);
      // A different key's public key does not verify them.
      const otherPub = join(rig.home.dir, 'other.pub');
      await writeFile(
        otherPub,
        keys.find((k) => k.algorithm !== alg && k.token.label === hsm.tokenLabel)!.publicKeyPem,
      );
      const wrong = await run('cosign2', cosignVerifyArgs(otherPub, image.ref), { env });
      expect(wrong.code).not.toBe(0);
      expect(await readFile(pub, 'utf8')).toBe(key.publicKeyPem);
    },
    120_000,
  );
});
