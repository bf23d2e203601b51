/**
 * The relay's blob transfer (`POST /relay-transfer`, server/relay/transfer.ts): the page orders one
 * blob moved from a source registry straight into an upload session it opened on the destination,
 * so the bytes cross the relay once instead of going registry → relay → page → relay → registry.
 * The relay hashes them on the way and refuses a digest or size mismatch (the upload is then never
 * completed); the page keeps the plan and reads progress from the answer, one JSON object a line
 * (NDJSON): `{"bytes":n}` as bytes go up, then `{"done":true,"bytes":n}` or
 * `{"error":{"code","message"}}`.
 *
 * This module holds what both ends agree on: the order's shape and the reading of the answer.
 */
import { RegistryError, RelayError, type RegistryErrorCode, type RelayErrorCode } from '../errors.ts';

/** Where the relay serves transfers. */
export const TRANSFER_PATH = '/relay-transfer';

/** The content type of a transfer's progress answer. */
export const TRANSFER_CONTENT_TYPE = 'application/x-ndjson';

/** The order the page sends (JSON). Authorizations are the registries' own headers, for this one transfer. */
export interface TransferOrder {
  from: {
    /** The source registry's API host, `host[:port]`. */
    registry: string;
    repository: string;
    /** `sha256:<hex>`. */
    digest: string;
    size: number;
    authorization?: string;
  };
  to: {
    /** The destination's open upload session, as an upstream URL (the registry's Location). */
    location: string;
    authorization?: string;
  };
}

/** One line of the answer. */
export type TransferLine =
  | { bytes: number; done?: undefined; error?: undefined }
  | { bytes: number; done: true; error?: undefined }
  | { error: { code: string; message: string }; bytes?: undefined; done?: undefined };

/** The error an answer's error line stands for: a RegistryError for the source's lies, else a RelayError. */
function lineError(e: { code?: unknown; message?: unknown }): Error {
  const code = typeof e.code === 'string' ? e.code : 'RELAY_TRANSFER_FAILED';
  const message = typeof e.message === 'string' ? e.message : 'The relay failed to transfer the blob.';
  if (code.startsWith('REGISTRY_')) return new RegistryError(code as RegistryErrorCode, message);
  return new RelayError(code as RelayErrorCode, message, 502);
}

function unfinished(): RelayError {
  return new RelayError(
    'RELAY_TRANSFER_FAILED',
    'The relay stopped answering before the blob transfer was finished.',
    502,
  );
}

/**
 * Reads a transfer's answer to its end, telling `onBytes` how many more bytes went up each time
 * the relay reports progress.
 * @throws RegistryError REGISTRY_DIGEST_MISMATCH or REGISTRY_SIZE_MISMATCH when the source's bytes
 *   were not the blob (the upload was not completed); RelayError with the relay's code when a
 *   registry failed part-way, RELAY_TRANSFER_FAILED when the answer ends without an outcome.
 */
export async function readTransferAnswer(
  body: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  let reported = 0;
  const line = (text: string): boolean => {
    if (text.trim() === '') return false;
    let l: TransferLine;
    try {
      l = JSON.parse(text) as TransferLine;
    } catch {
      throw unfinished();
    }
    if (l.error) throw lineError(l.error);
    if (typeof l.bytes === 'number' && l.bytes > reported) {
      onBytes(l.bytes - reported);
      reported = l.bytes;
    }
    return l.done === true;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line(text)) return;
      }
    }
    if (line(pending)) return;
    throw unfinished();
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
