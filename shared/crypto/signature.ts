/**
 * ECDSA signature encodings: WebCrypto and noble's compact form is r‖s (each padded to the curve
 * size, IEEE P1363); cosign, Go and containers/image use ASN.1 DER `SEQUENCE { r INTEGER,
 * s INTEGER }` (RFC 3279 §2.2.3). This is the one place that converts between them.
 */
import { SignatureError } from '../errors.ts';
import { DerError, der, decodeUnsigned, parseDer, sequence } from '../encoding/der.ts';

/**
 * r‖s to DER.
 * @throws SignatureError SIGNATURE_LENGTH_INVALID when `raw` is not 2×`size` bytes.
 */
export function rawToDer(raw: Uint8Array, size: number): Uint8Array {
  if (raw.length !== size * 2) {
    throw new SignatureError(
      'SIGNATURE_LENGTH_INVALID',
      `An ECDSA signature for this curve is ${size * 2} bytes, not ${raw.length}.`,
    );
  }
  return der.seq(der.uint(raw.subarray(0, size)), der.uint(raw.subarray(size)));
}

/**
 * DER to r‖s, each left-padded to `size` bytes.
 * @throws SignatureError SIGNATURE_DER_INVALID when `sig` is not a DER ECDSA signature whose
 *   integers fit the curve.
 */
export function derToRaw(sig: Uint8Array, size: number): Uint8Array {
  try {
    const [r, s, ...rest] = sequence(parseDer(sig), 'ECDSA-Sig-Value');
    if (rest.length) throw new DerError('extra fields');
    const out = new Uint8Array(size * 2);
    for (const [i, node] of [r, s].entries()) {
      const v = decodeUnsigned(node, i === 0 ? 'r' : 's');
      if (v.length > size) throw new DerError('integer longer than the curve');
      out.set(v, size * (i + 1) - v.length);
    }
    return out;
  } catch (e) {
    if (e instanceof DerError) {
      throw new SignatureError(
        'SIGNATURE_DER_INVALID',
        `The signature is not a DER-encoded ECDSA signature (${e.message}).`,
        { cause: e },
      );
    }
    throw e;
  }
}
