/**
 * Errors of the embedded registry, in the distribution spec's JSON form
 * `{"errors":[{"code","message","detail"}]}` with the spec's error codes and statuses.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
 */

/**
 * The spec's error codes (end-1 … end-13 and the codes of its error table), and
 * PRECONDITION_FAILED, which the spec does not define: a manifest PUT whose If-Match no longer
 * holds (412, routes/manifests.ts).
 */
export type DistributionErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNSUPPORTED'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'TOO_MANY_REQUESTS'
  | 'PRECONDITION_FAILED';

/** An error answered to the client; `headers` go with the answer (e.g. Range on a 416). */
export class DistributionError extends Error {
  readonly code: DistributionErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    code: DistributionErrorCode,
    status: number,
    message: string,
    detail: unknown = null,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'DistributionError';
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }

  toJSON(): { errors: { code: string; message: string; detail: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, detail: this.detail }] };
  }
}
