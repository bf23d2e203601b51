/**
 * WebAuthn calls for passkey-protected keys: register a passkey with the PRF extension, and ask
 * it for the PRF output of a salt. The output never leaves the page; shared/crypto/wrap.ts turns
 * it into the key that wraps the signing key.
 */
import { PasskeyError } from '../../../../shared/errors.ts';
import { randomBytes } from '../../../../shared/crypto/webcrypto.ts';
import { toBase64Url } from '../../../../shared/encoding/base64.ts';

/** True when the page's origin is an IP address, where WebAuthn refuses to work. */
export function isIpOrigin(hostname = location.hostname): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith('[') || hostname.includes(':');
}

function checkAvailable(): void {
  if (isIpOrigin()) {
    throw new PasskeyError(
      'PASSKEY_INSECURE_ORIGIN',
      `Passkeys do not work on an IP-address origin (${location.host}); open this page as http://localhost:${location.port || 80} or on an HTTPS domain.`,
    );
  }
  if (!window.isSecureContext) {
    throw new PasskeyError(
      'PASSKEY_INSECURE_ORIGIN',
      'Passkeys need a secure page: open it over HTTPS or on localhost.',
    );
  }
  if (typeof PublicKeyCredential === 'undefined' || !navigator.credentials) {
    throw new PasskeyError('PASSKEY_UNAVAILABLE', 'This browser does not support passkeys (WebAuthn).');
  }
}

/** How long a passkey request may wait for an authenticator before it is given up. */
export const PASSKEY_TIMEOUT_MS = 60_000;

function fromWebAuthnError(e: unknown, cancel?: AbortSignal, timeout?: AbortSignal): never {
  if (e instanceof PasskeyError) throw e;
  const name = (e as Error).name;
  if (cancel?.aborted) {
    throw new PasskeyError('PASSKEY_CANCELLED', 'Cancelled: no passkey was created and nothing was stored.', {
      cause: e,
    });
  }
  if (timeout?.aborted) {
    throw new PasskeyError(
      'PASSKEY_CANCELLED',
      `No authenticator answered within ${PASSKEY_TIMEOUT_MS / 1000} s (is a security key connected, or a platform passkey set up?). Nothing was stored.`,
      { cause: e },
    );
  }
  if (name === 'NotAllowedError' || name === 'AbortError') {
    throw new PasskeyError('PASSKEY_CANCELLED', 'The passkey request was cancelled or timed out.', { cause: e });
  }
  throw new PasskeyError('PASSKEY_UNAVAILABLE', `The passkey request failed (${name}: ${(e as Error).message}).`, {
    cause: e,
  });
}

interface PrfResults {
  enabled?: boolean;
  results?: { first?: BufferSource };
}

function prfFrom(cred: PublicKeyCredential): PrfResults | undefined {
  return (cred.getClientExtensionResults() as { prf?: PrfResults }).prf;
}

function toBytes(b: BufferSource): Uint8Array {
  return b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const NO_PRF =
  'This browser or passkey provider does not support the PRF extension, which is needed to protect a key with a passkey. Try Chrome or Edge with a platform passkey, or use a cosign key with a password.';

/**
 * What the browser says of PRF before anything is created (PublicKeyCredential.getClientCapabilities,
 * WebAuthn Level 3): false when it knows PRF is missing, null where it cannot tell.
 */
async function browserHasPrf(): Promise<boolean | null> {
  const pkc = PublicKeyCredential as unknown as { getClientCapabilities?: () => Promise<Record<string, boolean>> };
  if (typeof pkc.getClientCapabilities !== 'function') return null;
  try {
    const caps = await pkc.getClientCapabilities();
    return typeof caps['extension:prf'] === 'boolean' ? caps['extension:prf'] : null;
  } catch {
    return null;
  }
}

/**
 * Tells the passkey provider, where the browser can (PublicKeyCredential.signalUnknownCredential),
 * that a credential is of no use to this site, so it may delete it. True when the signal was sent.
 */
async function signalUnusable(rpId: string, credentialId: Uint8Array): Promise<boolean> {
  const pkc = PublicKeyCredential as unknown as {
    signalUnknownCredential?: (o: { rpId: string; credentialId: string }) => Promise<void>;
  };
  if (typeof pkc.signalUnknownCredential !== 'function') return false;
  try {
    await pkc.signalUnknownCredential({ rpId, credentialId: toBase64Url(credentialId) });
    return true;
  } catch {
    return false;
  }
}

/** Both signals: the person's Cancel and the page's own time limit. */
function withTimeout(signal: AbortSignal | undefined): { timeout: AbortSignal; both: AbortSignal } {
  // A little longer than WebAuthn's own `timeout`, for browsers that ignore it.
  const timeout = AbortSignal.timeout(PASSKEY_TIMEOUT_MS + 5_000);
  return { timeout, both: signal ? AbortSignal.any([signal, timeout]) : timeout };
}

/** Asks an existing passkey for the PRF output of `prfSalt`. */
export async function evaluatePrf(
  credentialId: Uint8Array,
  rpId: string,
  prfSalt: Uint8Array,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  checkAvailable();
  const { timeout, both } = withTimeout(signal);
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.get({
      signal: both,
      publicKey: {
        timeout: PASSKEY_TIMEOUT_MS,
        challenge: randomBytes(32) as BufferSource,
        rpId,
        allowCredentials: [{ type: 'public-key', id: credentialId as BufferSource }],
        userVerification: 'required',
        extensions: { prf: { eval: { first: prfSalt as BufferSource } } } as AuthenticationExtensionsClientInputs,
      },
    })) as PublicKeyCredential;
  } catch (e) {
    fromWebAuthnError(e, signal, timeout);
  }
  const first = prfFrom(cred)?.results?.first;
  if (!first) throw new PasskeyError('PASSKEY_PRF_UNSUPPORTED', NO_PRF);
  return toBytes(first);
}

/**
 * Registers a new passkey with PRF and returns its id and the PRF output of `prfSalt`. Where the
 * browser says PRF is missing, nothing is created; where it cannot tell and the new passkey has no
 * PRF, the error says that passkey was left on the authenticator. `signal` cancels; the request
 * gives up by itself after PASSKEY_TIMEOUT_MS.
 * @throws PasskeyError PASSKEY_INSECURE_ORIGIN, PASSKEY_UNAVAILABLE, PASSKEY_PRF_UNSUPPORTED,
 *   PASSKEY_CANCELLED
 */
export async function createPrfPasskey(
  userName: string,
  prfSalt: Uint8Array,
  signal?: AbortSignal,
): Promise<{ credentialId: Uint8Array; rpId: string; prfOutput: Uint8Array }> {
  checkAvailable();
  if ((await browserHasPrf()) === false) {
    throw new PasskeyError('PASSKEY_PRF_UNSUPPORTED', `${NO_PRF} No passkey was created.`);
  }
  const rpId = location.hostname;
  const { timeout, both } = withTimeout(signal);
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.create({
      signal: both,
      publicKey: {
        timeout: PASSKEY_TIMEOUT_MS,
        challenge: randomBytes(32) as BufferSource,
        rp: { name: 'cosign-web', id: rpId },
        user: { id: randomBytes(16) as BufferSource, name: userName, displayName: userName },
        pubKeyCredParams: [
          { type: 'public-key', alg: -7 },
          { type: 'public-key', alg: -257 },
        ],
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
        extensions: { prf: { eval: { first: prfSalt as BufferSource } } } as AuthenticationExtensionsClientInputs,
      },
    })) as PublicKeyCredential;
  } catch (e) {
    fromWebAuthnError(e, signal, timeout);
  }
  const prf = prfFrom(cred);
  const credentialId = new Uint8Array(cred.rawId);
  if (!prf?.enabled) {
    const signalled = await signalUnusable(rpId, credentialId);
    throw new PasskeyError(
      'PASSKEY_PRF_UNSUPPORTED',
      `${NO_PRF} Left behind: the authenticator now holds a passkey "${userName}" for ${rpId} that this page cannot use; nothing was stored here. ` +
        (signalled
          ? 'The page has asked the passkey provider to remove it; if it is still listed, delete it in its settings.'
          : "Delete it in the passkey provider's settings (the browser's or the security key's passkey list)."),
    );
  }
  // Some authenticators evaluate PRF at registration; the others need one assertion.
  const first = prf.results?.first;
  const prfOutput = first ? toBytes(first) : await evaluatePrf(credentialId, rpId, prfSalt);
  return { credentialId, rpId, prfOutput };
}
