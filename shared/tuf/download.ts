/**
 * Downloading TUF files with a length bound, and checking a file against the length and hashes
 * its metadata lists. https://theupdateframework.github.io/specification/latest/#detailed-client-workflow
 * (§5.5.2, §5.6.2, §5.7.3: the length and hashes check; "an upper bound" on what is downloaded).
 */
import { TufError, type TufErrorCode } from '../errors.ts';
import { toHex } from '../encoding/base64.ts';
import { digest, type HashName } from '../crypto/verify-spki.ts';
import { readUpTo } from '../registry/body.ts';

/** The fetch the client is given (the page's, going through the relay, or Node's). */
export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

const HASHES: Record<string, HashName> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

function unreachable(url: string, why: string, cause?: unknown): TufError {
  return new TufError('TUF_UNREACHABLE', `The TUF repository could not be read at ${url}: ${why}.`, { cause });
}

async function readCapped(res: Response, url: string, max: number, tooLarge: () => TufError): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) throw tooLarge();
  let bytes: Uint8Array | null;
  try {
    bytes = await readUpTo(res.body, max);
  } catch (e) {
    throw unreachable(url, 'the download broke off', e);
  }
  if (bytes === null) throw tooLarge();
  return bytes;
}

/**
 * GETs `url`, reading at most `max` bytes. Undefined when the server answers 404 or 403 (a file
 * that is not there), the bytes on 2xx.
 * @throws TufError TUF_UNREACHABLE when the request fails or answers another status;
 *   `tooLargeCode` (with `what` named) when the body is longer than `max`.
 */
export async function download(
  fetch: FetchLike,
  url: string,
  max: number,
  what: string,
  tooLargeCode: TufErrorCode = 'TUF_METADATA_INVALID',
): Promise<Uint8Array | undefined> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw unreachable(url, `the request failed (${(e as Error)?.message ?? String(e)})`, e);
  }
  if (res.status === 404 || res.status === 403) {
    void res.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!res.ok) {
    void res.body?.cancel().catch(() => undefined);
    throw unreachable(url, `it answered HTTP ${res.status}`);
  }
  return readCapped(
    res,
    url,
    max,
    () => new TufError(tooLargeCode, `The TUF ${what} is larger than the ${max} bytes allowed for it.`),
  );
}

/**
 * Whether `bytes` has the length (when given) and every hash listed. A hash algorithm other than
 * sha256, sha384 and sha512 is a mismatch: what cannot be checked is not accepted.
 */
export async function matches(
  bytes: Uint8Array,
  length: number | undefined,
  hashes: Record<string, string> | undefined,
): Promise<{ ok: true } | { ok: false; why: string }> {
  if (length !== undefined && bytes.length !== length) {
    return { ok: false, why: `it is ${bytes.length} bytes, not the ${length} listed` };
  }
  for (const [alg, want] of Object.entries(hashes ?? {})) {
    const hash = HASHES[alg];
    if (!hash) return { ok: false, why: `its ${alg} hash cannot be checked here` };
    if (toHex(await digest(hash, bytes)) !== want) return { ok: false, why: `its ${alg} hash is not the one listed` };
  }
  return { ok: true };
}
