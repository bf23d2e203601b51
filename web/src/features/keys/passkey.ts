/**
 * WebAuthn calls for passkey-protected keys: register a passkey with the PRF extension, and ask
 * it for the PRF output of a salt. The output never leaves the page; shared/crypto/wrap.ts turns
 * it into the key that wraps the signing key.
 */
import { PasskeyError } from '../../../../shared/errors.ts';
import { randomBytes } from '../../../../shared/crypto/webcrypto.ts';

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

function fromWebAuthnError(e: unknown): never {
  if (e instanceof PasskeyError) throw e;
  const name = (e as Error).name;
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

/** Asks an existing passkey for the PRF output of `prfSalt`. */
export async function evaluatePrf(credentialId: Uint8Array, rpId: string, prfSalt: Uint8Array): Promise<Uint8Array> {
  checkAvailable();
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.get({
      publicKey: {
        challenge: randomBytes(32) as BufferSource,
        rpId,
        allowCredentials: [{ type: 'public-key', id: credentialId as BufferSource }],
        userVerification: 'required',
        extensions: { prf: { eval: { first: prfSalt as BufferSource } } } as AuthenticationExtensionsClientInputs,
      },
    })) as PublicKeyCredential;
  } catch (e) {
    fromWebAuthnError(e);
  }
  const first = prfFrom(cred)?.results?.first;
  if (!first) throw new PasskeyError('PASSKEY_PRF_UNSUPPORTED', NO_PRF);
  return toBytes(first);
}

/**
 * Registers a new passkey with PRF and returns its id and the PRF output of `prfSalt`.
 * @throws PasskeyError PASSKEY_INSECURE_ORIGIN, PASSKEY_UNAVAILABLE, PASSKEY_PRF_UNSUPPORTED,
 *   PASSKEY_CANCELLED
 */
export async function createPrfPasskey(
  userName: string,
  prfSalt: Uint8Array,
): Promise<{ credentialId: Uint8Array; rpId: string; prfOutput: Uint8Array }> {
  checkAvailable();
  const rpId = location.hostname;
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.create({
      publicKey: {
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
    fromWebAuthnError(e);
  }
  const prf = prfFrom(cred);
  if (!prf?.enabled) throw new PasskeyError('PASSKEY_PRF_UNSUPPORTED', NO_PRF);
  const credentialId = new Uint8Array(cred.rawId);
  // Some authenticators evaluate PRF at registration; the others need one assertion.
  const first = prf.results?.first;
  const prfOutput = first ? toBytes(first) : await evaluatePrf(credentialId, rpId, prfSalt);
  return { credentialId, rpId, prfOutput };
}
