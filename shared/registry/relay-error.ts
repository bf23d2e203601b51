/**
 * How the relay's refusals travel besides their JSON body `{code, message}`: the code in
 * `X-Relay-Error` and the sentence, percent-encoded UTF-8, in `X-Relay-Message`. A HEAD answer has
 * no body, so without the second header a client that asked with HEAD (the first request of a
 * look-up) never reads why the relay refused.
 */

/** The header naming the relay's error code. */
export const RELAY_ERROR_HEADER = 'X-Relay-Error';
/** The header holding the relay's sentence, percent-encoded (encodeURIComponent). */
export const RELAY_MESSAGE_HEADER = 'X-Relay-Message';

/** The headers of a relay refusal: its code and its sentence. Never throws. */
export function relayErrorHeaders(code: string, message: string): Record<string, string> {
  return { [RELAY_ERROR_HEADER]: code, [RELAY_MESSAGE_HEADER]: encodeURIComponent(message) };
}

/**
 * The relay's sentence from a refusal's headers, or null when there is none or it does not decode
 * (a header a proxy mangled). Never throws.
 */
export function relayMessageOf(headers: Headers): string | null {
  const raw = headers.get(RELAY_MESSAGE_HEADER);
  if (raw === null || raw.trim() === '') return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}
