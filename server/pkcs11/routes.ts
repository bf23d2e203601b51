/**
 * The relay's PKCS#11 endpoint: the page lists the keys of the tokens the server holds and has one
 * sign what the page would sign with a key of its own (shared/ops/sign.ts), never anything else.
 *
 *   GET  /pkcs11/keys → 200 {pinConfigured, keys: [{uri, label, token: {label, manufacturer, model,
 *                       serial}, algorithm, publicKeyPem, fingerprint}]}
 *   POST /pkcs11/sign {uri, pin?, payload: base64} → 200 {signature: base64 DER}
 *
 * Every request: same origin only (the relay's origin check, which the app puts in front of these
 * routes), `Authorization: Bearer
 * <PKCS11_API_TOKEN>` compared in constant time. Each route throws Pkcs11Error, answered by the
 * app's one onError (server/app.ts) as `{code, message}` with the error's status; a route that must
 * send a header with it (WWW-Authenticate, Retry-After) sets it on the context before throwing.
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
import { clientAddress } from '../client-address.ts';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context, type Handler, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { Pkcs11Error, type Pkcs11ErrorCode } from '../../shared/errors.ts';
import { fromBase64, toBase64 } from '../../shared/encoding/base64.ts';
import { checkSigningPayload, type CheckedPayload, type RegistryAllowed } from '../../shared/cosign/payload-check.ts';
import { relayRegistryAllowed, type RelayOptions } from '../relay/config.ts';
import { auditLine, claimedInPayload, type Claimed } from './audit.ts';
import { createBackoff, type Backoff, type BackoffOptions } from './backoff.ts';
import type { Pkcs11Provider, Pkcs11TokenInfo, SignHooks } from './module.ts';
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

function error(code: Pkcs11ErrorCode, message: string, status: number): Pkcs11Error {
  return new Pkcs11Error(code, message, status);
}

/**
 * The page's answer when the server has no PKCS#11 module configured.
 * @throws Pkcs11Error (to app.onError) PKCS11_NOT_CONFIGURED (404) for every request
 */
export function pkcs11NotConfigured(): Hono {
  const app = new Hono();
  app.all('*', () => {
    throw error(
      'PKCS11_NOT_CONFIGURED',
      'This server has no PKCS#11 module configured (PKCS11_MODULE), so it offers no token keys.',
      404,
    );
  });
  return app;
}

function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The endpoint's options, normalised once. */
interface Endpoint {
  provider: Pkcs11Provider | Pkcs11Error;
  /** SHA-256 of the API token. */
  expected: Buffer;
  serverPin: string | undefined;
  backoff: Backoff;
  allowed: RegistryAllowed;
  log: (line: string) => void;
  maxBody: number;
}

/** What is known of a signing request so far, for its audit line. */
interface Seen {
  started: Date;
  uri?: Pkcs11Uri;
  checked?: CheckedPayload;
  /** What the payload claims, before it is checked (for the line of a refused one). */
  claimed?: Claimed;
}

function audit(e: Endpoint, c: Context, seen: Seen, outcome: string): void {
  e.log(
    auditLine({
      time: seen.started,
      key: seen.uri === undefined ? undefined : formatPkcs11Uri(seen.uri),
      digest: seen.checked?.digest ?? seen.claimed?.digest,
      identity: seen.checked?.identity ?? seen.claimed?.identity,
      kind: seen.checked?.kind,
      client: clientAddress(c),
      outcome,
    }),
  );
}

function isSign(c: Context): boolean {
  return c.req.method === 'POST' && c.req.path.endsWith('/sign');
}

/**
 * Every request carries `Authorization: Bearer <API token>`.
 * @throws Pkcs11Error PKCS11_UNAUTHORIZED (401, with WWW-Authenticate) otherwise
 */
function requireApiToken(e: Endpoint): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    // The scheme name is case-insensitive (RFC 7235 section 2.1); the token is not.
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(header);
    // Both sides hashed to the same length, so the comparison's time says nothing about the token.
    if (m === null || !timingSafeEqual(tokenDigest(m[1]!), e.expected)) {
      // Someone guessing tokens leaves a trail; the header itself is never written.
      if (isSign(c)) audit(e, c, { started: new Date() }, 'PKCS11_UNAUTHORIZED');
      c.header('WWW-Authenticate', 'Bearer realm="pkcs11"');
      throw error('PKCS11_UNAUTHORIZED', 'This endpoint needs the PKCS#11 API token the operator configured.', 401);
    }
    await next();
  };
}

/**
 * GET /keys.
 * @throws Pkcs11Error the module's (PKCS11_MODULE_FAILED, 502, for anything unexpected)
 */
function listKeys(e: Endpoint): Handler {
  return async (c) => {
    if (e.provider instanceof Pkcs11Error) throw e.provider;
    try {
      const keys = await e.provider.listKeys();
      return c.json({ pinConfigured: e.serverPin !== undefined, keys });
    } catch (err) {
      if (err instanceof Pkcs11Error) throw err;
      console.error(`pkcs11: listing keys failed: ${(err as Error).name}`);
      throw error('PKCS11_MODULE_FAILED', 'The PKCS#11 module failed to list its keys.', 502);
    }
  };
}

/** The size limit of POST /sign. @throws Pkcs11Error PKCS11_REQUEST_TOO_LARGE (413), audited */
function signBodyLimit(e: Endpoint): MiddlewareHandler {
  return bodyLimit({
    maxSize: e.maxBody,
    onError: (c) => {
      audit(e, c, { started: new Date() }, 'PKCS11_REQUEST_TOO_LARGE');
      throw error('PKCS11_REQUEST_TOO_LARGE', `A signing request is at most ${e.maxBody} bytes.`, 413);
    },
  });
}

interface SignRequest {
  uri: string;
  pin?: string;
  payload: string;
}

/** @throws Pkcs11Error PKCS11_REQUEST_INVALID unless the body is JSON `{uri, pin?, payload}` */
async function readSignRequest(c: Context): Promise<SignRequest> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw error('PKCS11_REQUEST_INVALID', 'The request body is not JSON.', 400);
  }
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
 * The PIN to log in with: the operator's, or the request's.
 * @throws Pkcs11Error PKCS11_REQUEST_INVALID (a PIN sent to a server that holds one, or too long),
 *   PKCS11_PIN_REQUIRED
 */
function pinFor(req: SignRequest, serverPin: string | undefined): string {
  if (serverPin !== undefined) {
    if (req.pin !== undefined) {
      throw error(
        'PKCS11_REQUEST_INVALID',
        'This server uses the token PIN its operator configured: do not send one.',
        400,
      );
    }
    return serverPin;
  }
  if (req.pin === undefined || req.pin === '') {
    throw error('PKCS11_PIN_REQUIRED', 'Signing with this key needs the token PIN.', 401);
  }
  if (req.pin.length > MAX_PIN_LENGTH) {
    throw error('PKCS11_REQUEST_INVALID', `A PIN is at most ${MAX_PIN_LENGTH} characters.`, 400);
  }
  return req.pin;
}

function tokenKey(t: Pkcs11TokenInfo): string {
  return `${t.manufacturer}\u0000${t.serial}\u0000${t.label}`;
}

/**
 * The provider's login hooks, counting wrong PINs per token.
 * @throws Pkcs11Error PKCS11_BACKOFF (429, with Retry-After) from mayLogin while the token waits
 */
function backoffHooks(c: Context, backoff: Backoff): SignHooks {
  return {
    mayLogin: (token) => {
      const wait = backoff.waitMs(tokenKey(token));
      if (wait > 0) {
        const retryAfter = Math.ceil(wait / 1000);
        c.header('Retry-After', String(retryAfter));
        throw error('PKCS11_BACKOFF', `Too many wrong PINs for this token: try again in ${retryAfter} s.`, 429);
      }
    },
    loginFailed: (token) => backoff.failed(tokenKey(token)),
    loggedIn: (token) => backoff.succeeded(tokenKey(token)),
  };
}

/** Checks a signing request step by step, noting in `seen` what the audit line names, and signs. */
async function signChecked(c: Context, e: Endpoint, seen: Seen): Promise<Uint8Array> {
  if (e.provider instanceof Pkcs11Error) throw e.provider;
  const req = await readSignRequest(c);
  const uri = parsePkcs11Uri(req.uri);
  seen.uri = uri;
  requireSelectingAttributes(uri);
  const bytes = fromBase64(req.payload);
  if (bytes === null) throw error('PKCS11_REQUEST_INVALID', '"payload" is not standard base64.', 400);
  seen.claimed = claimedInPayload(bytes);
  seen.checked = checkSigningPayload(bytes, e.allowed);
  const pin = pinFor(req, e.serverPin);
  const { signature } = await e.provider.sign(uri, pin, bytes, backoffHooks(c, e.backoff));
  return signature;
}

/**
 * POST /sign: one audit line per request, signed or refused.
 * @throws Pkcs11Error every refusal; PKCS11_SIGN_FAILED (502) for anything unexpected
 */
function sign(e: Endpoint): Handler {
  return async (c) => {
    const seen: Seen = { started: new Date() };
    try {
      const signature = await signChecked(c, e, seen);
      audit(e, c, seen, 'ok');
      return c.json({ signature: toBase64(signature) });
    } catch (err) {
      const known =
        err instanceof Pkcs11Error ? err : error('PKCS11_SIGN_FAILED', 'The PKCS#11 module failed while signing.', 502);
      if (!(err instanceof Pkcs11Error)) console.error(`pkcs11: signing failed: ${(err as Error).name}`);
      audit(e, c, seen, known.code);
      throw known;
    }
  };
}

/**
 * The /pkcs11 routes, for `app.route('/pkcs11', createPkcs11Routes(...))`; their errors reach the
 * app's onError.
 * @throws Pkcs11Error PKCS11_NOT_CONFIGURED at creation when the API token is empty
 */
export function createPkcs11Routes(options: Pkcs11Options, relay: RelayOptions = {}): Hono {
  if (options.apiToken === '') {
    throw error('PKCS11_NOT_CONFIGURED', 'The PKCS#11 endpoint needs an API token (PKCS11_API_TOKEN).', 500);
  }
  const e: Endpoint = {
    provider: options.provider,
    expected: tokenDigest(options.apiToken),
    serverPin: options.pin !== undefined && options.pin !== '' ? options.pin : undefined,
    backoff: createBackoff(options.backoff),
    allowed: relayRegistryAllowed(relay),
    log: options.log ?? ((line: string) => console.log(line)),
    maxBody: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  };
  const app = new Hono();
  app.use('*', async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
  });
  app.use('*', requireApiToken(e));
  app.get('/keys', listKeys(e));
  app.post('/sign', signBodyLimit(e), sign(e));
  return app;
}
