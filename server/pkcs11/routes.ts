/**
 * The relay's PKCS#11 endpoint: the page lists the keys of the tokens the server holds and has one
 * sign what the page would sign with a key of its own (shared/ops/sign.ts), never anything else.
 *
 *   GET  /pkcs11/keys → 200 {pinConfigured, keys: [{uri, label, token: {label, manufacturer, model,
 *                       serial}, algorithm, publicKeyPem, fingerprint}]}
 *   POST /pkcs11/sign {uri, pin?, payload: base64} → 200 {signature: base64 DER}
 *
 * Every request: same origin only (the relay's origin check), `Authorization: Bearer
 * <PKCS11_API_TOKEN>` compared in constant time. Errors are `{code, message}` (Pkcs11ErrorCode).
 *
 * PIN: from PKCS11_PIN when the operator configured one, and then a request carrying a PIN is
 * refused (PKCS11_REQUEST_INVALID), so a page never sends one for nothing; otherwise from the
 * request. It goes to C_Login and nowhere else: not kept, not logged. Wrong PINs are counted per
 * token (backoff.ts): past the threshold the endpoint answers 429 PKCS11_BACKOFF with Retry-After
 * and does not touch the token.
 *
 * What is signed: checkSigningPayload (shared/cosign/payload-check.ts) with "allowed registry" =
 * a registry the relay may reach. The mechanism follows the key (ECDSA over SHA-256, RSA PKCS#1
 * v1.5 SHA-256); the request cannot choose it. One audit line per signing request (audit.ts), also
 * for one refused for its API token or its size.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Pkcs11Error, type Pkcs11ErrorCode } from '../../shared/errors.ts';
import { fromBase64, toBase64 } from '../../shared/encoding/base64.ts';
import { checkSigningPayload, type CheckedPayload, type RegistryAllowed } from '../../shared/cosign/payload-check.ts';
import { DOCKER_HUB, DOCKER_HUB_API } from '../../shared/registry/reference.ts';
import { normaliseRelayOptions, type RelayOptions } from '../relay/config.ts';
import { parseAuthority } from '../relay/host.ts';
import { relayCors } from '../relay/cors.ts';
import { auditLine } from './audit.ts';
import { createBackoff, type BackoffOptions } from './backoff.ts';
import type { Pkcs11Provider, Pkcs11TokenInfo } from './module.ts';
import { formatPkcs11Uri, parsePkcs11Uri, requireSelectingAttributes, type Pkcs11Uri } from './uri.ts';

export interface Pkcs11Options {
  /** The loaded module, or why it could not be loaded (then every request answers 502). */
  provider: Pkcs11Provider | Pkcs11Error;
  /** PKCS11_API_TOKEN: the bearer token every request must carry. */
  apiToken: string;
  /** PKCS11_PIN: the token PIN, when the operator keeps it on the server. */
  pin?: string;
  backoff?: BackoffOptions;
  /** Largest request body (default 64 KiB). */
  maxBodyBytes?: number;
  /** Where audit lines go (default console.log). */
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** CK_TOKEN_INFO allows PINs up to ulMaxPinLen; 255 is SoftHSM's and more than any card's. */
const MAX_PIN_LENGTH = 255;

function fail(c: Context, e: Pkcs11Error, headers: Record<string, string> = {}): Response {
  return c.json(e.toJSON(), e.status as ContentfulStatusCode, headers);
}

function error(code: Pkcs11ErrorCode, message: string, status: number): Pkcs11Error {
  return new Pkcs11Error(code, message, status);
}

/** The page's answer when the server has no PKCS#11 module configured. */
export function pkcs11NotConfigured(): Hono {
  const app = new Hono();
  app.all('*', (c) =>
    c.json(
      {
        code: 'PKCS11_NOT_CONFIGURED',
        message: 'This server has no PKCS#11 module configured (PKCS11_MODULE), so it offers no token keys.',
      },
      404,
    ),
  );
  return app;
}

/** "May this image's registry be signed for?": exactly the hosts the relay may reach. */
export function relayRegistryAllowed(relay: RelayOptions): RegistryAllowed {
  const config = normaliseRelayOptions(relay);
  return (registry) => {
    const authority = parseAuthority(registry === DOCKER_HUB ? DOCKER_HUB_API : registry);
    if (authority === null) return false;
    const port = authority.port ?? config.schemeFor(authority, undefined).port;
    return config.isDirect(authority, port);
  };
}

function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

interface SignRequest {
  uri: string;
  pin?: string;
  payload: string;
}

function readSignRequest(body: unknown): SignRequest {
  const bad = (why: string) => error('PKCS11_REQUEST_INVALID', `The request is not {uri, pin?, payload}: ${why}.`, 400);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('it is not a JSON object');
  for (const k of Object.keys(body)) {
    if (k !== 'uri' && k !== 'pin' && k !== 'payload') throw bad(`it has a field "${k.slice(0, 40)}"`);
  }
  const b = body as Record<string, unknown>;
  if (typeof b.uri !== 'string') throw bad('"uri" is not a string');
  if (typeof b.payload !== 'string') throw bad('"payload" is not a base64 string');
  if (b.pin !== undefined && typeof b.pin !== 'string') throw bad('"pin" is not a string');
  return { uri: b.uri, payload: b.payload, ...(typeof b.pin === 'string' ? { pin: b.pin } : {}) };
}

/**
 * The /pkcs11 routes, for `app.route('/pkcs11', createPkcs11Routes(...))`.
 * @throws Pkcs11Error PKCS11_NOT_CONFIGURED at creation when the API token is empty
 */
export function createPkcs11Routes(options: Pkcs11Options, relay: RelayOptions = {}): Hono {
  if (options.apiToken === '') {
    throw error('PKCS11_NOT_CONFIGURED', 'The PKCS#11 endpoint needs an API token (PKCS11_API_TOKEN).', 500);
  }
  const expected = tokenDigest(options.apiToken);
  const serverPin = options.pin !== undefined && options.pin !== '' ? options.pin : undefined;
  const backoff = createBackoff(options.backoff);
  const allowed = relayRegistryAllowed(relay);
  const log = options.log ?? ((line: string) => console.log(line));
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const tokenKey = (t: Pkcs11TokenInfo) => `${t.manufacturer}\u0000${t.serial}\u0000${t.label}`;

  const app = new Hono();
  // Same origin only: no other site may drive this server's tokens from a visitor's browser.
  app.use('*', relayCors({}));
  app.use('*', async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
  });
  /** The audit line of a signing request refused before its body was read: nothing but who and why. */
  const auditRefused = (c: Context, outcome: Pkcs11ErrorCode) =>
    log(
      auditLine({
        time: new Date(),
        key: undefined,
        digest: undefined,
        identity: undefined,
        kind: undefined,
        client: clientAddress(c),
        outcome,
      }),
    );
  const isSign = (c: Context) => c.req.method === 'POST' && c.req.path.endsWith('/sign');

  app.use('*', async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    // The scheme name is case-insensitive (RFC 7235 section 2.1); the token is not.
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(header);
    // Both sides hashed to the same length, so the comparison's time says nothing about the token.
    if (m === null || !timingSafeEqual(tokenDigest(m[1]!), expected)) {
      // Someone guessing tokens leaves a trail; the header itself is never written.
      if (isSign(c)) auditRefused(c, 'PKCS11_UNAUTHORIZED');
      return fail(
        c,
        error('PKCS11_UNAUTHORIZED', 'This endpoint needs the PKCS#11 API token the operator configured.', 401),
        { 'WWW-Authenticate': 'Bearer realm="pkcs11"' },
      );
    }
    await next();
  });

  app.get('/keys', async (c) => {
    if (options.provider instanceof Pkcs11Error) return fail(c, options.provider);
    try {
      const keys = await options.provider.listKeys();
      return c.json({ pinConfigured: serverPin !== undefined, keys });
    } catch (e) {
      if (e instanceof Pkcs11Error) return fail(c, e);
      console.error(`pkcs11: listing keys failed: ${(e as Error).name}`);
      return fail(c, error('PKCS11_MODULE_FAILED', 'The PKCS#11 module failed to list its keys.', 502));
    }
  });

  app.post(
    '/sign',
    bodyLimit({
      maxSize: maxBody,
      onError: (c) => {
        auditRefused(c, 'PKCS11_REQUEST_TOO_LARGE');
        return fail(c, error('PKCS11_REQUEST_TOO_LARGE', `A signing request is at most ${maxBody} bytes.`, 413));
      },
    }),
    async (c) => {
      const started = new Date();
      let uri: Pkcs11Uri | undefined;
      let checked: CheckedPayload | undefined;
      let retryAfter: number | undefined;
      const audit = (outcome: string) =>
        log(
          auditLine({
            time: started,
            key: uri === undefined ? undefined : formatPkcs11Uri(uri),
            digest: checked?.digest,
            identity: checked?.identity ?? undefined,
            kind: checked?.kind,
            client: clientAddress(c),
            outcome,
          }),
        );
      try {
        if (options.provider instanceof Pkcs11Error) throw options.provider;
        let body: unknown;
        try {
          body = await c.req.json();
        } catch {
          throw error('PKCS11_REQUEST_INVALID', 'The request body is not JSON.', 400);
        }
        const req = readSignRequest(body);
        uri = parsePkcs11Uri(req.uri);
        requireSelectingAttributes(uri);
        const bytes = fromBase64(req.payload);
        if (bytes === null) throw error('PKCS11_REQUEST_INVALID', '"payload" is not standard base64.', 400);
        checked = checkSigningPayload(bytes, allowed);
        let pin: string;
        if (serverPin !== undefined) {
          if (req.pin !== undefined) {
            throw error(
              'PKCS11_REQUEST_INVALID',
              'This server uses the token PIN its operator configured: do not send one.',
              400,
            );
          }
          pin = serverPin;
        } else {
          if (req.pin === undefined || req.pin === '') {
            throw error('PKCS11_PIN_REQUIRED', 'Signing with this key needs the token PIN.', 401);
          }
          if (req.pin.length > MAX_PIN_LENGTH) {
            throw error('PKCS11_REQUEST_INVALID', `A PIN is at most ${MAX_PIN_LENGTH} characters.`, 400);
          }
          pin = req.pin;
        }
        const { signature } = await options.provider.sign(uri, pin, bytes, {
          mayLogin: (token) => {
            const wait = backoff.waitMs(tokenKey(token));
            if (wait > 0) {
              retryAfter = Math.ceil(wait / 1000);
              throw error('PKCS11_BACKOFF', `Too many wrong PINs for this token: try again in ${retryAfter} s.`, 429);
            }
          },
          loginFailed: (token) => backoff.failed(tokenKey(token)),
          loggedIn: (token) => backoff.succeeded(tokenKey(token)),
        });
        audit('ok');
        return c.json({ signature: toBase64(signature) });
      } catch (e) {
        const err =
          e instanceof Pkcs11Error ? e : error('PKCS11_SIGN_FAILED', 'The PKCS#11 module failed while signing.', 502);
        if (!(e instanceof Pkcs11Error)) console.error(`pkcs11: signing failed: ${(e as Error).name}`);
        audit(err.code);
        return fail(c, err, retryAfter !== undefined ? { 'Retry-After': String(retryAfter) } : {});
      }
    },
  );
  return app;
}
