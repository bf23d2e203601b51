/**
 * The OpenID Connect redirect URI of keyless signing (`/oidc-callback.html`): the issuer sends the
 * login popup here with `?code=…&state=…` (or `?error=…`). This page hands the query to the page
 * that opened the login over a same-origin BroadcastChannel — the opener's handle may be gone
 * after a cross-origin login — and closes itself. The code alone is worthless: the PKCE verifier
 * and the state it is checked against stay in the opener's memory
 * (web/src/features/sign/keyless-login.ts).
 */
import { OIDC_CHANNEL, type OidcCallbackMessage } from './features/sign/keyless-channel.ts';

const channel = new BroadcastChannel(OIDC_CHANNEL);
const message: OidcCallbackMessage = { type: 'oidc-callback', query: location.search };
channel.postMessage(message);
channel.close();
// The query (the code) leaves the address bar and the history entry at once.
history.replaceState(null, '', location.pathname);
const status = document.getElementById('status');
if (status) status.textContent = 'Logged in. This window closes by itself; if it does not, close it.';
window.close();
