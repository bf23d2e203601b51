/**
 * The OpenID Connect login of "Sign with your identity", in a popup: the page opens the window in
 * the click (so no pop-up blocker stops it), reads the issuer's discovery document, sends the
 * window to the issuer's login with PKCE, and waits for web/src/oidc-callback.ts to hand back the
 * redirect's query on a BroadcastChannel. Then it trades the code for the ID token (the verifier
 * never left this tab) and reads the claims signing needs. The token lives only in the caller's
 * memory, is sent only to Fulcio, and is dropped after the signature.
 *
 * Ends, each with a KeylessError: the window was blocked (KEYLESS_UNSUPPORTED), closed or the
 * login cancelled (KEYLESS_LOGIN_CANCELLED), `signal` aborted (KEYLESS_LOGIN_CANCELLED), no answer
 * within `timeoutMs` (KEYLESS_LOGIN_FAILED), anything the issuer refused (oidc.ts).
 */
import { KeylessError } from '../../../../shared/errors.ts';
import {
  discoverIssuer,
  exchangeCode,
  loginRequest,
  readCallback,
  readIdToken,
  type FetchLike,
  type IdTokenClaims,
} from '../../../../shared/sigstore/oidc.ts';
import { isCallbackMessage, OIDC_CALLBACK_PATH, OIDC_CHANNEL } from './keyless-channel.ts';

export interface KeylessLogin {
  idToken: string;
  claims: IdTokenClaims;
}

/** How long a closed login window may stay silent before the login counts as cancelled. */
const CLOSED_GRACE_MS = 3_000;

/** The window name every login reuses, so a second click does not stack windows. */
const WINDOW_NAME = 'cosign-web-login';

/**
 * Opens the login window, empty; call it synchronously in the click handler. Null when the
 * browser blocked it. Never throws.
 */
export function openLoginWindow(): Window | null {
  try {
    return window.open('about:blank', WINDOW_NAME, 'popup,width=520,height=720');
  } catch {
    return null;
  }
}

/** The redirect URI of this page's origin (what the issuer must allow). Never throws. */
export function redirectUri(): string {
  return `${location.origin}${OIDC_CALLBACK_PATH}`;
}

/** Waits for the callback's query; rejects when the window closes, `signal` aborts or time runs out. */
function awaitCallback(popup: Window, signal: AbortSignal | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const channel = new BroadcastChannel(OIDC_CHANNEL);
    const end = (fn: () => void) => {
      clearInterval(poll);
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      channel.close();
      fn();
    };
    const cancelled = (why: string) => new KeylessError('KEYLESS_LOGIN_CANCELLED', why);
    channel.onmessage = (ev: MessageEvent) => {
      if (isCallbackMessage(ev.data)) end(() => resolve(ev.data.query));
    };
    // A closed window with no answer is a cancelled login; checked twice a second. The callback page
    // closes itself right after posting, and the message may arrive after the window is seen
    // closed: a closed window counts only once it has stayed silent for CLOSED_GRACE_MS.
    let closedAt = 0;
    const poll = setInterval(() => {
      if (!popup.closed) return;
      closedAt ||= Date.now();
      if (Date.now() - closedAt >= CLOSED_GRACE_MS)
        end(() => reject(cancelled('The login window was closed before the login ended; nothing was signed.')));
    }, 500);
    const timer = setTimeout(
      () =>
        end(() => {
          popup.close();
          reject(
            new KeylessError(
              'KEYLESS_LOGIN_FAILED',
              `The login did not end within ${Math.round(timeoutMs / 60_000)} minutes, so it was given up; nothing was signed.`,
            ),
          );
        }),
      timeoutMs,
    );
    const onAbort = () =>
      end(() => {
        popup.close();
        reject(cancelled('The login was cancelled; nothing was signed.'));
      });
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Logs in at `issuer` as `clientId` in `popup` (from openLoginWindow), through `via` (the relay).
 * @throws KeylessError as the header says; errors of `fetch` pass
 */
export async function logIn(o: {
  popup: Window | null;
  issuer: string;
  clientId: string;
  fetch: FetchLike;
  via: (url: string) => string;
  signal?: AbortSignal;
  timeoutMs?: number;
}): Promise<KeylessLogin> {
  if (!o.popup)
    throw new KeylessError(
      'KEYLESS_UNSUPPORTED',
      'The browser blocked the login window. Allow pop-ups for this page, then try again.',
    );
  const popup = o.popup;
  try {
    const endpoints = await discoverIssuer(o.fetch, o.issuer, o.via);
    const req = loginRequest(endpoints, o.clientId, redirectUri());
    popup.location.href = req.url;
    const query = await awaitCallback(popup, o.signal, o.timeoutMs ?? 5 * 60_000);
    const code = readCallback(query, req);
    const idToken = await exchangeCode(o.fetch, req, code, o.via);
    const claims = readIdToken(idToken, { issuer: endpoints.issuer, clientId: o.clientId, nonce: req.nonce });
    return { idToken, claims };
  } finally {
    if (!popup.closed) popup.close();
  }
}
