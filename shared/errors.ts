/**
 * Error types shared by the page, the relay and the tests.
 *
 * Every failure a person can cause or meet carries a stable `code` from a closed union; tests
 * assert the code, the page picks its words by code, and the relay sends `{code, message}` over
 * HTTP. The message is a sentence a person understands; it never holds a password, a private key,
 * a token or a PIN. (Modelled on jose's `util/errors.ts` and sigstore-js's verify errors.)
 */

/** Codes of errors about keys: parsing, decrypting, importing, generating. */
export type KeyErrorCode =
  | 'KEY_PEM_INVALID'
  | 'KEY_PEM_LABEL_UNKNOWN'
  | 'KEY_ENVELOPE_INVALID'
  | 'KEY_KDF_UNSUPPORTED'
  | 'KEY_KDF_PARAMS_REFUSED'
  | 'KEY_CIPHER_UNSUPPORTED'
  | 'KEY_SALT_INVALID'
  | 'KEY_NONCE_INVALID'
  | 'KEY_PASSWORD_WRONG'
  | 'KEY_NOT_PKCS8'
  | 'KEY_DER_INVALID'
  | 'KEY_ALGORITHM_UNSUPPORTED'
  | 'KEY_CURVE_UNSUPPORTED'
  | 'KEY_RSA_TOO_SMALL'
  | 'KEY_MISMATCH'
  | 'KEY_LOCKED'
  | 'KEY_NOT_FOUND'
  | 'KEY_DUPLICATE'
  | 'KEY_STORAGE_FAILED'
  | 'KEY_WEBCRYPTO_UNSUPPORTED';

/** Codes of errors about passkeys (WebAuthn PRF). */
export type PasskeyErrorCode =
  | 'PASSKEY_UNAVAILABLE'
  | 'PASSKEY_PRF_UNSUPPORTED'
  | 'PASSKEY_CANCELLED'
  | 'PASSKEY_INSECURE_ORIGIN'
  | 'PASSKEY_UNWRAP_FAILED';

/** Codes of errors about signatures and their encodings. */
export type SignatureErrorCode =
  | 'SIGNATURE_DER_INVALID'
  | 'SIGNATURE_LENGTH_INVALID'
  | 'SIGNATURE_PAYLOAD_INVALID'
  | 'SIGNATURE_BUNDLE_INVALID'
  | 'SIGNATURE_ANNOTATION_INVALID'
  | 'SIGNATURE_IMAGE_UNSUPPORTED'
  | 'SIGNATURE_WRITE_LOST'
  | 'SIGNATURE_NOTHING_TO_WRITE'
  // A signature from an external signer (ops/external.ts) does not check; the name is public.
  | 'PKCS11_EXTERNAL_SIGNATURE_INVALID';

/** Codes of errors from talking to a registry (through the relay or directly). */
export type RegistryErrorCode =
  | 'REGISTRY_REFERENCE_INVALID'
  | 'REGISTRY_UNAUTHORIZED'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_UNSUPPORTED'
  | 'REGISTRY_DIGEST_MISMATCH'
  | 'REGISTRY_SIZE_MISMATCH'
  | 'REGISTRY_TOO_LARGE'
  | 'REGISTRY_BAD_RESPONSE'
  | 'REGISTRY_AUTH_FAILED'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_PRECONDITION_FAILED'
  | 'REGISTRY_ERROR';

/**
 * Codes the relay answers with when it, not the registry, refuses or fails a request. They travel
 * as JSON `{code, message}` with the header `X-Relay-Error: <code>`.
 */
export type RelayErrorCode =
  | 'RELAY_BAD_REQUEST'
  | 'RELAY_UPSTREAM_NOT_ALLOWED'
  | 'RELAY_PATH_NOT_ALLOWED'
  | 'RELAY_ADDRESS_REFUSED'
  | 'RELAY_PLAIN_HTTP_REFUSED'
  | 'RELAY_REDIRECT_REFUSED'
  | 'RELAY_TOO_MANY_REDIRECTS'
  | 'RELAY_BODY_TOO_LARGE'
  | 'RELAY_ORIGIN_REFUSED'
  | 'RELAY_UPSTREAM_UNREACHABLE'
  | 'RELAY_UPSTREAM_TIMEOUT'
  | 'RELAY_UPSTREAM_TLS'
  | 'RELAY_NOT_FOUND'
  | 'RELAY_METHOD_NOT_ALLOWED'
  | 'RELAY_CONFIG_INVALID'
  | 'RELAY_TRANSFER_FAILED'
  | 'RELAY_INTERNAL';

/** Codes of a signature or image that does not verify, and of verification inputs that are wrong. */
export type VerificationErrorCode =
  | 'VERIFY_NO_SIGNATURES'
  | 'VERIFY_NO_VALID_SIGNATURE'
  | 'VERIFY_PLATFORM_UNSIGNED'
  | 'VERIFY_BAD_SIGNATURE'
  | 'VERIFY_WRONG_KEY'
  | 'VERIFY_SIGNATURE_MALFORMED'
  | 'VERIFY_ALGORITHM_REFUSED'
  | 'VERIFY_PAYLOAD_MALFORMED'
  | 'VERIFY_LAYER_MISMATCH'
  | 'VERIFY_DIGEST_MISMATCH'
  | 'VERIFY_IDENTITY_MISMATCH'
  | 'VERIFY_ANNOTATION_MISMATCH'
  | 'VERIFY_KEYLESS'
  | 'VERIFY_NOT_A_SIGNATURE'
  | 'VERIFY_TOO_MANY'
  | 'VERIFY_POLICY_INVALID'
  | 'VERIFY_LINK_INVALID'
  // Sigstore material: certificates, transparency logs, timestamps, trust roots (shared/sigstore/).
  | 'VERIFY_TRUSTED_ROOT_INVALID'
  | 'VERIFY_TRUSTED_ROOT_UNKNOWN'
  | 'VERIFY_CERTIFICATE_INVALID'
  | 'VERIFY_CERTIFICATE_UNTRUSTED'
  | 'VERIFY_CERTIFICATE_EXPIRED'
  | 'VERIFY_SCT_MISSING'
  | 'VERIFY_SCT_INVALID'
  | 'VERIFY_ISSUER_MISMATCH'
  | 'VERIFY_CLAIM_MISMATCH'
  | 'VERIFY_REGEXP_INVALID'
  | 'VERIFY_TLOG_MISSING'
  | 'VERIFY_TLOG_ENTRY_INVALID'
  | 'VERIFY_TLOG_UNTRUSTED'
  | 'VERIFY_TLOG_BODY_MISMATCH'
  | 'VERIFY_SET_INVALID'
  | 'VERIFY_INCLUSION_PROOF_INVALID'
  | 'VERIFY_CHECKPOINT_INVALID'
  | 'VERIFY_TIMESTAMP_INVALID'
  | 'VERIFY_TIMESTAMP_UNTRUSTED'
  | 'VERIFY_NO_VERIFIED_TIME';

/**
 * Codes of the relay's PKCS#11 endpoint (hardware keys).
 * They cross HTTP as JSON `{code, message}`; the message never holds a PIN or a PKCS#11 internal.
 */
export type Pkcs11ErrorCode =
  | 'PKCS11_NOT_CONFIGURED'
  | 'PKCS11_UNAUTHORIZED'
  | 'PKCS11_MODULE_FAILED'
  | 'PKCS11_URI_INVALID'
  | 'PKCS11_KEY_NOT_FOUND'
  | 'PKCS11_TOKEN_NOT_PRESENT'
  | 'PKCS11_PIN_REQUIRED'
  | 'PKCS11_PIN_INCORRECT'
  | 'PKCS11_PIN_LOCKED'
  | 'PKCS11_PIN_FINAL_TRY'
  | 'PKCS11_BACKOFF'
  | 'PKCS11_PAYLOAD_REFUSED'
  | 'PKCS11_DIGEST_INVALID'
  | 'PKCS11_REGISTRY_NOT_ALLOWED'
  | 'PKCS11_SIGN_FAILED'
  | 'PKCS11_REQUEST_INVALID'
  | 'PKCS11_REQUEST_TOO_LARGE';

/** Codes of managing an image's signatures: inspecting, copying, removing. */
export type ManageErrorCode =
  | 'MANAGE_SAME_IMAGE'
  | 'MANAGE_COPY_INCOMPLETE'
  | 'MANAGE_COPY_VERIFY_FAILED'
  | 'MANAGE_COPY_DESTINATION_INVALID'
  | 'MANAGE_SIGNATURE_NOT_FOUND'
  | 'MANAGE_REMOVE_LOST'
  | 'MANAGE_DELETE_REFUSED'
  | 'MANAGE_TOO_MANY';

/**
 * Codes of refreshing a trusted root through TUF (shared/tuf/): metadata that is malformed, signed
 * by too few keys, expired, older than what is held, or a target whose bytes are not the ones
 * listed.
 */
export type TufErrorCode =
  | 'TUF_METADATA_INVALID'
  | 'TUF_THRESHOLD_NOT_MET'
  | 'TUF_EXPIRED'
  | 'TUF_ROLLBACK'
  | 'TUF_TARGET_MISMATCH'
  | 'TUF_TARGET_UNKNOWN'
  | 'TUF_UNREACHABLE';

/**
 * Codes of a containers-policy.json(5) pasted to verify with (shared/ops/containers-policy/): text
 * that is not a policy containers/image would load, a form this page cannot apply (GPG, *Path),
 * and a requirement that refuses the image as it stands (`reject`).
 */
export type PolicyErrorCode = 'POLICY_INVALID' | 'POLICY_UNSUPPORTED' | 'POLICY_REJECTED';

/**
 * Codes of signing with Sigstore services (shared/sigstore/signing-config.ts, services.ts): a
 * signing config that cannot be read or names no service this page can use, and a transparency
 * log or timestamp authority that cannot be reached, refuses, or answers what does not verify
 * against the trusted root. Nothing is pushed after any of them.
 */
export type SigningServiceErrorCode =
  | 'SIGNING_CONFIG_INVALID'
  | 'SIGNING_CONFIG_NO_SERVICE'
  | 'SIGNING_TLOG_UNREACHABLE'
  | 'SIGNING_TLOG_REFUSED'
  | 'SIGNING_TLOG_ANSWER_INVALID'
  | 'SIGNING_TLOG_KEY_UNSUPPORTED'
  | 'SIGNING_TSA_UNREACHABLE'
  | 'SIGNING_TSA_REFUSED'
  | 'SIGNING_TSA_ANSWER_INVALID';

/**
 * Codes of the relay's tag locks (server/locks.ts); LOCK_STORE_UNAVAILABLE: the lock store
 * (Redis, server/locks-redis.ts) did not answer, and the page writes without the lock.
 */
export type LockErrorCode =
  | 'LOCK_BAD_REQUEST'
  | 'LOCK_BUSY'
  | 'LOCK_KEY_REFUSED'
  | 'LOCK_HELD'
  | 'LOCK_HOLD_LIMIT'
  | 'LOCK_QUOTA'
  | 'LOCK_STORE_UNAVAILABLE';

/**
 * Codes of keyless signing (shared/sigstore/oidc.ts, fulcio.ts): the OpenID Connect login, the ID
 * token, and the certificate Fulcio issues for it.
 */
export type KeylessErrorCode =
  | 'KEYLESS_UNSUPPORTED'
  | 'KEYLESS_LOGIN_CANCELLED'
  | 'KEYLESS_LOGIN_FAILED'
  | 'KEYLESS_TOKEN_INVALID'
  | 'FULCIO_UNREACHABLE'
  | 'FULCIO_REFUSED'
  | 'FULCIO_RESPONSE_INVALID'
  | 'FULCIO_KEY_MISMATCH'
  | 'FULCIO_CERTIFICATE_UNTRUSTED';

/**
 * Codes that belong to no domain: a path nothing is served at, a server fault, and a failure that
 * is not one of the project's errors (a bug, a browser refusal), as pages and results show it.
 * The server's own refusals of any request (server/site.ts, server/body-limit.ts): a host name it
 * does not serve (421), a write from another site (403), a body over a limit (413), and a setting
 * it cannot start with.
 */
export type GeneralErrorCode =
  | 'NOT_FOUND'
  | 'SERVER_ERROR'
  | 'UNEXPECTED'
  | 'HOST_NOT_SERVED'
  | 'ORIGIN_REFUSED'
  | 'REQUEST_TOO_LARGE'
  | 'CONFIG_INVALID'
  | 'METRICS_REFUSED';

/** Every code an error of this project can carry, on the page, in a result file or over HTTP. */
export type ErrorCode =
  | KeyErrorCode
  | PasskeyErrorCode
  | SignatureErrorCode
  | RegistryErrorCode
  | RelayErrorCode
  | VerificationErrorCode
  | Pkcs11ErrorCode
  | ManageErrorCode
  | TufErrorCode
  | PolicyErrorCode
  | LockErrorCode
  | SigningServiceErrorCode
  | KeylessErrorCode
  | GeneralErrorCode;

/** A failure in the `{code, message}` form errors cross boundaries in (HTTP, result files, the page). */
export interface Reason {
  code: ErrorCode;
  message: string;
}

/**
 * Base class of every error the project throws on purpose. `status` is an HTTP status: the one a
 * registry answered with, for a RegistryError; for the others the one the server answers with
 * when the error crosses HTTP (server/app.ts `onError`, which uses it for any error; absent, 500).
 */
export class CosignWebError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly status: number | undefined;

  constructor(code: C, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status;
    this.name = new.target.name;
  }

  /** The JSON form errors take when they cross HTTP or are shown in a result file. */
  toJSON(): Reason {
    return { code: this.code, message: this.message };
  }
}

/** A key could not be read, decrypted, imported, generated or used. */
export class KeyError extends CosignWebError<KeyErrorCode> {}

/** A passkey could not be created or used to wrap or unwrap a key. */
export class PasskeyError extends CosignWebError<PasskeyErrorCode> {}

/** A signature's encoding is not what its algorithm requires. */
export class SignatureError extends CosignWebError<SignatureErrorCode> {}

/** A registry refused or failed a request (`status`: what it answered), or answered something that does not check out. */
export class RegistryError extends CosignWebError<RegistryErrorCode> {}

/** An image or signature does not verify, or what to verify against is malformed. */
export class VerificationError extends CosignWebError<VerificationErrorCode> {}

/** Inspecting, copying or removing an image's signatures failed or was refused. */
export class ManageError extends CosignWebError<ManageErrorCode> {}

/** The relay refused or failed a request on its own account (not the registry's answer). */
export class RelayError extends CosignWebError<RelayErrorCode> {
  declare readonly status: number;
  /** `status`: 4xx when the request is at fault, 502/504 when upstream is. */
  constructor(code: RelayErrorCode, message: string, status: number, options?: { cause?: unknown }) {
    super(code, message, { ...options, status });
  }
}

/** A hardware key (through the relay's PKCS#11 endpoint) failed or refused. */
export class Pkcs11Error extends CosignWebError<Pkcs11ErrorCode> {
  declare readonly status: number;
  constructor(code: Pkcs11ErrorCode, message: string, status = 400, options?: { cause?: unknown }) {
    super(code, message, { ...options, status });
  }
}

/** A trusted root could not be refreshed through TUF (shared/tuf/). */
export class TufError extends CosignWebError<TufErrorCode> {}

/** A containers-policy.json could not be read, or names what this page cannot apply. */
export class PolicyError extends CosignWebError<PolicyErrorCode> {}

/** A signing config, transparency log or timestamp authority failed a signing (nothing was pushed). */
export class SigningServiceError extends CosignWebError<SigningServiceErrorCode> {}

/** A tag lock could not be taken or released (server/locks.ts). */
export class LockError extends CosignWebError<LockErrorCode> {}

/** A keyless signing step failed: the login, the ID token, or Fulcio's certificate. */
export class KeylessError extends CosignWebError<KeylessErrorCode> {}

/**
 * A failure as a reason to show: a project error's code and sentence; anything else (a bug, a
 * browser refusal) as `UNEXPECTED` with its message. The one fallback for unknown errors.
 */
export function reasonOf(e: unknown): Reason {
  if (e instanceof CosignWebError) return { code: e.code, message: e.message };
  return { code: 'UNEXPECTED', message: `Something went wrong: ${(e as Error)?.message ?? String(e)}` };
}
