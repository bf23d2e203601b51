/**
 * The one message the login callback page (web/src/oidc-callback.ts) sends to the page that
 * opened the login, and the channel it travels on.
 */

/** The same-origin BroadcastChannel the callback answers on. */
export const OIDC_CHANNEL = 'cosign-web-oidc';

/** The redirect URI's path, served from dist/ (vite.config.ts builds it as a second page). */
export const OIDC_CALLBACK_PATH = '/oidc-callback.html';

export interface OidcCallbackMessage {
  type: 'oidc-callback';
  /** The redirect's query, with its `?`: `code` and `state`, or `error`. */
  query: string;
}

/** Whether a message on the channel is a callback. Never throws. */
export function isCallbackMessage(data: unknown): data is OidcCallbackMessage {
  const d = data as Partial<OidcCallbackMessage> | null;
  return typeof d === 'object' && d !== null && d.type === 'oidc-callback' && typeof d.query === 'string';
}
