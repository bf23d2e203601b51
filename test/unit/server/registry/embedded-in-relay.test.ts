/**
 * The server's embedded registry is reachable through the relay with the default allowlist, on
 * its loopback address only: `localRegistries` adds exactly that host:port, over plain http.
 */
import { describe, expect, it } from 'vitest';
import { normaliseRelayOptions } from '../../../../server/relay/config.ts';
import { parseAuthority } from '../../../../server/relay/host.ts';

describe('localRegistries', () => {
  it('allows exactly the embedded registry, keeps the defaults, and speaks http to it', () => {
    const c = normaliseRelayOptions({ localRegistries: ['127.0.0.1:5001'] });
    const local = parseAuthority('127.0.0.1:5001')!;
    const other = parseAuthority('127.0.0.1:5002')!;
    expect(c.explicit).toBe(false);
    expect(c.mayBePrivate(local, 5001)).toBe(true);
    expect(c.mayBePrivate(other, 5002)).toBe(false);
    expect(c.plainHttp.has('127.0.0.1:5001')).toBe(true);
    expect(c.direct.has('ghcr.io:443')).toBe(true);
  });
});
