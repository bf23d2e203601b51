/**
 * The page's side of the relay's PKCS#11 endpoint (server/pkcs11/routes.ts): list the keys of the
 * server's tokens, have one sign, and turn the relay's refusals into sentences by code.
 *
 *   GET  /pkcs11/keys → {pinConfigured, keys: [{uri, label, token, algorithm, publicKeyPem, fingerprint}]}
 *   POST /pkcs11/sign {uri, pin?, payload: base64} → {signature: base64}
 *
 * Same origin only. The relay access token goes in `Authorization: Bearer …` to /pkcs11/* and
 * nowhere else; the PIN goes in the body of /pkcs11/sign and nowhere else.
 */
import { Pkcs11Error, type Pkcs11ErrorCode } from '../../../../shared/errors.ts';
import { fromBase64, toBase64 } from '../../../../shared/encoding/base64.ts';

/** One key of a token, as the relay lists it. */
export interface HardwareKeyInfo {
  uri: string;
  label: string;
  token: { label: string; manufacturer: string; model: string; serial: string };
  algorithm: string;
  publicKeyPem: string;
  fingerprint: string;
}

interface HardwareKeyList {
  pinConfigured: boolean;
  keys: HardwareKeyInfo[];
}

/** What the page says for each refusal; the relay's own message follows where it adds the detail. */
const SENTENCES: Partial<Record<Pkcs11ErrorCode, string>> = {
  PKCS11_NOT_CONFIGURED:
    'This server has no PKCS#11 module configured, so it offers no hardware keys (its operator sets PKCS11_MODULE).',
  PKCS11_UNAUTHORIZED:
    'The relay refused the access token: type the relay access token the operator of this server gave you (PKCS11_API_TOKEN).',
  PKCS11_MODULE_FAILED: "The server's PKCS#11 module failed; its operator finds the cause in the server's log.",
  PKCS11_URI_INVALID: "The relay did not accept this key's pkcs11: URI.",
  PKCS11_KEY_NOT_FOUND: 'This key is no longer on the token: press "Connect" again to refresh the list.',
  PKCS11_TOKEN_NOT_PRESENT: 'The token that holds this key is not present (unplugged or removed).',
  PKCS11_PIN_REQUIRED: 'Signing with this key needs the token PIN: type it in "Token PIN".',
  PKCS11_PIN_INCORRECT:
    'The token refused the PIN: it is not the PIN of this token. Nothing was signed or pushed. A token locks itself after a few wrong PINs.',
  PKCS11_PIN_LOCKED:
    "The token's PIN is locked after too many wrong tries; the token's security officer must unblock it. Nothing was signed.",
  PKCS11_PIN_FINAL_TRY:
    "One more wrong PIN would lock this token: the relay does not risk that try. Log in once with the right PIN using the token's own tools (or have its security officer reset the counter), then sign again. Nothing was signed.",
  PKCS11_BACKOFF: 'Too many wrong PINs for this token: the relay waits before letting anyone try again.',
  PKCS11_PAYLOAD_REFUSED:
    'The relay refused to sign these bytes: it signs only cosign signatures of images, as this page makes them.',
  PKCS11_DIGEST_INVALID: 'The relay refused to sign: the image digest in the signed bytes is not valid.',
  PKCS11_REGISTRY_NOT_ALLOWED:
    "The relay signs only for images in registries it may reach, and this image's registry is not one of them.",
  PKCS11_SIGN_FAILED: 'The token failed to sign.',
  PKCS11_REQUEST_INVALID: 'The relay did not accept the signing request.',
  PKCS11_REQUEST_TOO_LARGE: 'The signing request is larger than the relay accepts.',
};

/** Codes whose relay message says something the fixed sentence does not (which check failed, how long to wait). */
const WITH_DETAIL = new Set<string>([
  'PKCS11_BACKOFF',
  'PKCS11_PAYLOAD_REFUSED',
  'PKCS11_DIGEST_INVALID',
  'PKCS11_REGISTRY_NOT_ALLOWED',
  'PKCS11_REQUEST_INVALID',
  'PKCS11_URI_INVALID',
]);

/** Turns a relay answer that is not 200 into a Pkcs11Error with a sentence by code. */
async function refusal(res: Response, what: string): Promise<Pkcs11Error> {
  let code: string | undefined;
  let message = '';
  try {
    const body = (await res.json()) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.message === 'string') message = body.message.slice(0, 400);
  } catch {
    // not JSON: an answer from something other than the relay
  }
  const known = code !== undefined && code in SENTENCES ? (code as Pkcs11ErrorCode) : undefined;
  if (!known) {
    return new Pkcs11Error(
      res.status === 401 ? 'PKCS11_UNAUTHORIZED' : 'PKCS11_MODULE_FAILED',
      `${what} failed: the server answered ${res.status}${message ? ` (${message})` : ''}.`,
      res.status,
    );
  }
  let sentence = SENTENCES[known]!;
  const retry = res.headers.get('retry-after');
  if (known === 'PKCS11_BACKOFF' && retry && /^\d+$/.test(retry)) sentence += ` Try again in ${retry} s.`;
  else if (WITH_DETAIL.has(known) && message) sentence += ` The relay said: ${message}`;
  return new Pkcs11Error(known, sentence, res.status);
}

function unreachable(e: unknown, what: string): Pkcs11Error {
  return new Pkcs11Error(
    'PKCS11_MODULE_FAILED',
    `${what} failed: the server could not be reached (${(e as Error).message}).`,
    0,
    {
      cause: e,
    },
  );
}

function isKeyInfo(k: unknown): k is HardwareKeyInfo {
  const o = k as Record<string, unknown> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.uri === 'string' &&
    o.uri.startsWith('pkcs11:') &&
    typeof o.label === 'string' &&
    typeof o.algorithm === 'string' &&
    typeof o.publicKeyPem === 'string' &&
    typeof o.fingerprint === 'string' &&
    typeof o.token === 'object' &&
    o.token !== null
  );
}

/**
 * Lists the keys of the server's tokens.
 * @throws Pkcs11Error with a sentence by code (PKCS11_NOT_CONFIGURED, PKCS11_UNAUTHORIZED, …).
 */
export async function listHardwareKeys(origin: string, accessToken: string): Promise<HardwareKeyList> {
  let res: Response;
  try {
    res = await fetch(`${origin}/pkcs11/keys`, {
      headers: { authorization: `Bearer ${accessToken}` },
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw unreachable(e, 'Listing the hardware keys');
  }
  if (!res.ok) throw await refusal(res, 'Listing the hardware keys');
  const body = (await res.json()) as { pinConfigured?: unknown; keys?: unknown };
  if (typeof body.pinConfigured !== 'boolean' || !Array.isArray(body.keys)) {
    throw new Pkcs11Error(
      'PKCS11_MODULE_FAILED',
      'The server answered the key list in a form this page does not know.',
      502,
    );
  }
  return { pinConfigured: body.pinConfigured, keys: body.keys.filter(isKeyInfo) };
}

/**
 * Has the relay sign `payload` with the key at `uri`; `pin` only when the server has none.
 * @throws Pkcs11Error with a sentence by code (PKCS11_PIN_INCORRECT, PKCS11_BACKOFF, …).
 */
export async function signWithHardwareKey(
  origin: string,
  accessToken: string,
  uri: string,
  pin: string | undefined,
  payload: Uint8Array,
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(`${origin}/pkcs11/sign`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ uri, ...(pin !== undefined ? { pin } : {}), payload: toBase64(payload) }),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw unreachable(e, 'Signing with the hardware key');
  }
  if (!res.ok) throw await refusal(res, 'Signing with the hardware key');
  const body = (await res.json()) as { signature?: unknown };
  const signature = typeof body.signature === 'string' ? fromBase64(body.signature) : null;
  if (!signature) throw new Pkcs11Error('PKCS11_SIGN_FAILED', 'The relay answered without a signature.', 502);
  return signature;
}
