/**
 * The PKCS#11 endpoint's own logic without a token: the back-off clock, the audit line, which
 * registries count as allowed, and the routes through `app.request()` with a provider made of
 * node:crypto keys standing in for a token (the real token is test/integration/pkcs11.test.ts):
 * the API token, the PIN rules, 429 with Retry-After before the provider is asked, errors that
 * cross HTTP without internals.
 */
import { generateKeyPairSync, sign as nodeSign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../../../server/app.ts';
import { auditLine } from '../../../../server/pkcs11/audit.ts';
import { createBackoff } from '../../../../server/pkcs11/backoff.ts';
import type { Pkcs11KeyInfo, Pkcs11Provider, Pkcs11TokenInfo } from '../../../../server/pkcs11/module.ts';
import type { Pkcs11Options } from '../../../../server/pkcs11/routes.ts';
import { relayRegistryAllowed } from '../../../../server/relay/config.ts';
import { formatPkcs11Uri } from '../../../../server/pkcs11/uri.ts';
import { buildSimpleSigningPayload } from '../../../../shared/cosign/payload.ts';
import { Pkcs11Error } from '../../../../shared/errors.ts';

const TOKEN = 'unit-api-token-0123456789';
const PIN = '4711';
const DIGEST = `sha256:${'0f'.repeat(32)}`;
const token: Pkcs11TokenInfo = { label: 'unit', manufacturer: 'node', model: 'crypto', serial: '1' };
const URI = formatPkcs11Uri({ token: 'unit', object: 'k', id: new Uint8Array([1]), type: 'private' });

/** A token made of one node:crypto P-256 key, with a PIN and a count of logins. */
function fakeToken(opts: { throws?: unknown } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const calls = { sign: 0, login: 0 };
  const key: Pkcs11KeyInfo = {
    uri: URI,
    label: 'k',
    token,
    algorithm: 'ECDSA P-256',
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: '00',
  };
  const provider: Pkcs11Provider = {
    listKeys: async () => [key],
    async sign(_uri, pin, data, hooks = {}) {
      calls.sign++;
      hooks.mayLogin?.(token);
      if (opts.throws !== undefined) throw opts.throws;
      calls.login++;
      if (pin !== PIN) {
        hooks.loginFailed?.(token);
        throw new Pkcs11Error('PKCS11_PIN_INCORRECT', 'The token refused the PIN.', 401);
      }
      hooks.loggedIn?.(token);
      return { signature: new Uint8Array(nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'der' })), key };
    },
    close: () => undefined,
  };
  return { provider, calls, publicKey };
}

function appWith(pkcs11: Partial<Pkcs11Options> & { provider: Pkcs11Options['provider'] }, lines: string[] = []) {
  return createApp({
    staticRoot: import.meta.dirname,
    relay: { allowedRegistries: ['registry.example:5000'] },
    pkcs11: { apiToken: TOKEN, log: (l) => lines.push(l), ...pkcs11 },
  });
}

const payload = Buffer.from(buildSimpleSigningPayload('registry.example:5000/a/b:v1', DIGEST)).toString('base64');
const post = (app: ReturnType<typeof createApp>, body: unknown, auth = `Bearer ${TOKEN}`) =>
  app.request('/pkcs11/sign', {
    method: 'POST',
    headers: { Authorization: auth, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('backoff', () => {
  it('lets threshold-1 failures pass, then waits base, doubling per failure, capped; success resets', () => {
    let now = 0;
    const b = createBackoff({ threshold: 3, baseMs: 1000, maxMs: 5000, windowMs: 60_000, now: () => now });
    b.failed('t');
    b.failed('t');
    expect(b.waitMs('t')).toBe(0);
    b.failed('t');
    expect(b.waitMs('t')).toBe(1000);
    expect(b.waitMs('other')).toBe(0);
    now += 1000;
    expect(b.waitMs('t')).toBe(0);
    b.failed('t');
    expect(b.waitMs('t')).toBe(2000);
    now += 2000;
    b.failed('t');
    expect(b.waitMs('t')).toBe(4000);
    now += 4000;
    b.failed('t');
    expect(b.waitMs('t')).toBe(5000);
    b.succeeded('t');
    expect(b.waitMs('t')).toBe(0);
    b.failed('t');
    expect(b.waitMs('t')).toBe(0);
  });

  it('forgets failures older than the window', () => {
    let now = 0;
    const b = createBackoff({ threshold: 2, baseMs: 1000, windowMs: 10_000, now: () => now });
    b.failed('t');
    now += 10_001;
    b.failed('t');
    expect(b.waitMs('t')).toBe(0);
    b.failed('t');
    expect(b.waitMs('t')).toBe(1000);
  });
});

describe('audit line', () => {
  it('is one line whatever the values hold', () => {
    const line = auditLine({
      time: new Date(0),
      key: 'pkcs11:id=%01',
      digest: DIGEST,
      identity: 'a b\nforged line',
      kind: undefined,
      client: '::1',
      outcome: 'ok',
    });
    expect(line).toBe(
      `pkcs11 sign time=1970-01-01T00:00:00.000Z key=pkcs11:id=%01 digest=${DIGEST} identity=a%20b%0aforged%20line kind=- client=::1 ok`,
    );
  });

  it('cuts a long value before escaping it, so no escape is cut in half', () => {
    const line = auditLine({
      time: new Date(0),
      key: undefined,
      digest: undefined,
      identity: `x${'\n'.repeat(2000)}`,
      kind: undefined,
      client: 'unknown',
      outcome: 'ok',
    });
    expect(line).toBe(
      `pkcs11 sign time=1970-01-01T00:00:00.000Z key=- digest=- identity=x${'%0a'.repeat(1023)} kind=- client=unknown ok`,
    );
  });
});

describe('relayRegistryAllowed', () => {
  it('is exactly what the relay may reach', () => {
    const defaults = relayRegistryAllowed({});
    expect(['docker.io', 'ghcr.io', 'quay.io', 'europe-docker.pkg.dev'].map(defaults)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['registry.example', '127.0.0.1:5000', 'ghcr.io:444', 'localhost'].map(defaults)).toEqual([
      false,
      false,
      false,
      false,
    ]);
    const listed = relayRegistryAllowed({
      allowedRegistries: ['registry.example:5000', 'plain.example'],
      plainHttpRegistries: ['plain.example'],
      localRegistries: ['127.0.0.1:5001'],
    });
    expect(['registry.example:5000', 'plain.example', '127.0.0.1:5001'].map(listed)).toEqual([true, true, true]);
    expect(['registry.example', 'docker.io', '127.0.0.1:5000', 'not a host'].map(listed)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('/pkcs11 routes', () => {
  it('signs with the right PIN; the signature verifies; one audit line without the PIN', async () => {
    const { provider, publicKey } = fakeToken();
    const lines: string[] = [];
    const res = await post(appWith({ provider }, lines), { uri: URI, pin: PIN, payload });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { signature } = (await res.json()) as { signature: string };
    const data = Buffer.from(payload, 'base64');
    expect(verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'))).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ identity=registry\.example:5000\/a\/b:v1 kind=simple-signing client=unknown ok$/);
    expect(lines[0]).not.toContain(PIN);
  });

  it('names the identity and digest a refused payload claimed in its audit line', async () => {
    const { provider, calls } = fakeToken();
    const lines: string[] = [];
    const app = appWith({ provider }, lines);
    const elsewhere = buildSimpleSigningPayload('evil.example/a/b:v1', DIGEST);
    const res = await post(app, { uri: URI, pin: PIN, payload: Buffer.from(elsewhere).toString('base64') });
    expect(((await res.json()) as { code: string }).code).toBe('PKCS11_REGISTRY_NOT_ALLOWED');
    const statement = JSON.stringify({ _type: 'x', subject: [{ digest: { sha256: 'ab'.repeat(32) } }] });
    const dsse = `DSSEv1 28 application/vnd.in-toto+json ${statement.length} ${statement}`;
    await post(app, { uri: URI, pin: PIN, payload: Buffer.from(dsse).toString('base64') });
    await post(app, { uri: URI, pin: PIN, payload: Buffer.from('not json').toString('base64') });
    expect(calls.sign).toBe(0);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      new RegExp(` digest=${DIGEST} identity=evil\\.example/a/b:v1 kind=- client=unknown PKCS11_REGISTRY_NOT_ALLOWED$`),
    );
    expect(lines[1]).toMatch(new RegExp(` digest=sha256:${'ab'.repeat(32)} identity=- kind=- client=unknown PKCS11_`));
    expect(lines[2]).toMatch(/ digest=- identity=- kind=- client=unknown PKCS11_PAYLOAD_REFUSED$/);
  });

  it('answers 401 without the right bearer token, before anything else', async () => {
    const { provider, calls } = fakeToken();
    const lines: string[] = [];
    const app = appWith({ provider }, lines);
    const refused = [
      '',
      'Bearer',
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}0`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Bearer  ${TOKEN}`,
      TOKEN,
    ];
    for (const auth of refused) {
      const res = await post(app, { uri: URI, pin: PIN, payload }, auth);
      expect([auth, res.status, ((await res.json()) as { code: string }).code]).toEqual([
        auth,
        401,
        'PKCS11_UNAUTHORIZED',
      ]);
    }
    expect((await app.request('/pkcs11/keys')).status).toBe(401);
    expect(calls.sign).toBe(0);
    // The scheme is case-insensitive (RFC 7235), the token is not.
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      const res = await post(app, { uri: URI, pin: PIN, payload }, `${scheme} ${TOKEN}`);
      expect([scheme, res.status]).toEqual([scheme, 200]);
    }
    // One audit line per refused signing request (none for the listing), never with the token.
    const refusals = lines.filter((l) => !l.endsWith(' ok'));
    expect(refusals).toHaveLength(refused.length);
    for (const line of refusals) {
      expect(line).toMatch(
        /^pkcs11 sign time=\S+ key=- digest=- identity=- kind=- client=unknown PKCS11_UNAUTHORIZED$/,
      );
      expect(line).not.toContain(TOKEN.slice(0, 8));
    }
  });

  it('refuses a key URI with attributes that select nothing, naming the attribute, before the token is asked', async () => {
    const { provider, calls } = fakeToken();
    const lines: string[] = [];
    const app = appWith({ provider }, lines);
    for (const attribute of [
      'slot-id=1',
      'slot-description=s',
      'slot-manufacturer=m',
      'library-manufacturer=m',
      'library-description=d',
      'library-version=1',
      'x-vendor=v',
    ]) {
      const res = await post(app, { uri: `${URI};${attribute}`, pin: PIN, payload });
      const body = (await res.json()) as { code: string; message: string };
      expect([attribute, res.status, body.code]).toEqual([attribute, 422, 'PKCS11_URI_INVALID']);
      expect(body.message).toContain(attribute.split('=')[0]);
    }
    expect(calls.sign).toBe(0);
    expect(lines.every((l) => l.endsWith(' PKCS11_URI_INVALID'))).toBe(true);
    expect((await post(app, { uri: URI, pin: PIN, payload })).status).toBe(200);
  });

  it('refuses an empty API token at creation', () => {
    let thrown: unknown;
    try {
      appWith({ provider: fakeToken().provider, apiToken: '' });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(Pkcs11Error);
    expect((thrown as Pkcs11Error).code).toBe('PKCS11_NOT_CONFIGURED');
  });

  it('after three wrong PINs answers 429 with Retry-After and does not ask the token', async () => {
    let now = 1_000_000;
    const { provider, calls } = fakeToken();
    const app = appWith({ provider, backoff: { baseMs: 4000, now: () => now } });
    for (let i = 0; i < 3; i++) expect((await post(app, { uri: URI, pin: 'bad', payload })).status).toBe(401);
    expect(calls.login).toBe(3);
    const res = await post(app, { uri: URI, pin: PIN, payload });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('4');
    expect(((await res.json()) as { code: string }).code).toBe('PKCS11_BACKOFF');
    expect(calls.login).toBe(3);
    now += 4000;
    expect((await post(app, { uri: URI, pin: PIN, payload })).status).toBe(200);
  });

  it('with a server PIN: lists pinConfigured, signs without one, refuses one sent', async () => {
    const { provider } = fakeToken();
    const app = appWith({ provider, pin: PIN });
    const keys = (await (
      await app.request('/pkcs11/keys', { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as { pinConfigured: boolean; keys: unknown[] };
    expect(keys.pinConfigured).toBe(true);
    expect(keys.keys).toHaveLength(1);
    expect((await post(app, { uri: URI, payload })).status).toBe(200);
    const sent = await post(app, { uri: URI, pin: PIN, payload });
    expect([sent.status, ((await sent.json()) as { code: string }).code]).toEqual([400, 'PKCS11_REQUEST_INVALID']);
  });

  it('an unexpected failure of the module is 502 without its message', async () => {
    const { provider } = fakeToken({ throws: new Error('secret internal detail 4711') });
    const res = await post(appWith({ provider }), { uri: URI, pin: PIN, payload });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text).code).toBe('PKCS11_SIGN_FAILED');
    expect(text).not.toContain('secret');
  });

  it('refuses a body over the limit with 413, and a preflight from another origin with 403', async () => {
    const { provider, calls } = fakeToken();
    const lines: string[] = [];
    const app = appWith({ provider, maxBodyBytes: 1024 }, lines);
    const res = await post(app, { uri: URI, pin: PIN, payload: 'A'.repeat(2000) });
    expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([413, 'PKCS11_REQUEST_TOO_LARGE']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ key=- digest=- identity=- kind=- client=unknown PKCS11_REQUEST_TOO_LARGE$/);
    const pre = await app.request('/pkcs11/sign', {
      method: 'OPTIONS',
      headers: { Origin: 'https://other.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(pre.status).toBe(403);
    expect(calls.sign).toBe(0);
  });
});
