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
export type SignatureErrorCode = 'SIGNATURE_DER_INVALID' | 'SIGNATURE_LENGTH_INVALID';

export type ErrorCode = KeyErrorCode | PasskeyErrorCode | SignatureErrorCode;

/** Base class of every error the project throws on purpose. */
export class CosignWebError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** The JSON form errors take when they cross HTTP or are shown in a result file. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A key could not be read, decrypted, imported, generated or used. */
export class KeyError extends CosignWebError {
  declare readonly code: KeyErrorCode;
  constructor(code: KeyErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A passkey could not be created or used to wrap or unwrap a key. */
export class PasskeyError extends CosignWebError {
  declare readonly code: PasskeyErrorCode;
  constructor(code: PasskeyErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A signature's encoding is not what its algorithm requires. */
export class SignatureError extends CosignWebError {
  declare readonly code: SignatureErrorCode;
  constructor(code: SignatureErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** True when `e` is one of the project's errors (and so has a `code`). */
export function isCosignWebError(e: unknown): e is CosignWebError {
  return e instanceof CosignWebError;
}
