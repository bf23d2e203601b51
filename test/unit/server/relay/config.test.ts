/**
 * The relay's configuration (server/relay/config.ts): environment parsing, the default allowlist,
 * exact host:port matching with scheme-dependent default ports, plain-http selection, CORS origin
 * checks, and refusal of malformed settings with a sentence naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../../shared/errors.ts';
import {
  DEFAULT_MAX_MANIFEST_BYTES,
  DEFAULT_MAX_REDIRECTS,
  DEFAULT_REDIRECT_TARGETS,
  DEFAULT_REGISTRIES,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  describeRelayConfig,
  normaliseCorsOrigins,
  normaliseRelayOptions,
  relayOptionsFromEnv,
} from '../../../../server/relay/config.ts';
import { parseHost, type Host } from '../../../../server/relay/host.ts';

const h = (text: string): Host => parseHost(text)!;

function configError(f: () => unknown): RelayError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RelayError);
    expect((e as RelayError).code).toBe('RELAY_CONFIG_INVALID');
    return e as RelayError;
  }
  throw new Error('expected RELAY_CONFIG_INVALID');
}

describe('relayOptionsFromEnv', () => {
  it('reads every setting', () => {
    const o = relayOptionsFromEnv({
      RELAY_ALLOWED_REGISTRIES: ' localhost:5000 , ghcr.io,,[::1]:7000 ',
      RELAY_PLAIN_HTTP_REGISTRIES: 'localhost:5000',
      RELAY_CORS_ORIGINS: 'https://app.example, http://localhost:5173',
      RELAY_MAX_MANIFEST_BYTES: '1048576',
      RELAY_UPSTREAM_TIMEOUT_MS: '1500',
      RELAY_MAX_REDIRECTS: '0',
      RELAY_SIGSTORE_SERVICES: 'rekor.example, tsa.example:8443',
    });
    expect(o).toEqual({
      allowedRegistries: ['localhost:5000', 'ghcr.io', '[::1]:7000'],
      privateRegistries: [],
      plainHttpRegistries: ['localhost:5000'],
      corsOrigins: ['https://app.example', 'http://localhost:5173'],
      tokenRealms: [],
      sigstoreServices: ['rekor.example', 'tsa.example:8443'],
      maxManifestBytes: 1048576,
      upstreamTimeoutMs: 1500,
      maxRedirects: 0,
    });
  });

  it('gives the documented defaults for an empty environment', () => {
    const c = normaliseRelayOptions(relayOptionsFromEnv({}));
    expect(c.explicit).toBe(false);
    expect(c.maxManifestBytes).toBe(DEFAULT_MAX_MANIFEST_BYTES);
    expect(DEFAULT_MAX_MANIFEST_BYTES).toBe(4 * 1024 * 1024);
    expect(c.upstreamTimeoutMs).toBe(DEFAULT_UPSTREAM_TIMEOUT_MS);
    expect(DEFAULT_UPSTREAM_TIMEOUT_MS).toBe(30_000);
    expect(c.maxRedirects).toBe(DEFAULT_MAX_REDIRECTS);
    expect(DEFAULT_MAX_REDIRECTS).toBe(5);
    expect(c.plainHttp.size).toBe(0);
  });

  it('refuses malformed values at start-up, naming the variable', () => {
    expect(configError(() => relayOptionsFromEnv({ RELAY_MAX_REDIRECTS: 'five' })).message).toContain(
      'RELAY_MAX_REDIRECTS',
    );
    expect(configError(() => relayOptionsFromEnv({ RELAY_MAX_REDIRECTS: '21' })).message).toContain('0 to 20');
    expect(configError(() => relayOptionsFromEnv({ RELAY_UPSTREAM_TIMEOUT_MS: '0' })).message).toContain(
      'RELAY_UPSTREAM_TIMEOUT_MS',
    );
    expect(configError(() => relayOptionsFromEnv({ RELAY_MAX_MANIFEST_BYTES: '-1' })).message).toContain(
      'RELAY_MAX_MANIFEST_BYTES',
    );
    for (const bad of [
      'user@host',
      'http://host',
      'host:0',
      'host:65536',
      'host.',
      'ho_st',
      '*.gcr.io',
      '[::1',
      '::1',
    ]) {
      expect(configError(() => relayOptionsFromEnv({ RELAY_ALLOWED_REGISTRIES: bad })).message, bad).toContain(
        'RELAY_ALLOWED_REGISTRIES',
      );
    }
    expect(configError(() => relayOptionsFromEnv({ RELAY_PLAIN_HTTP_REGISTRIES: 'a b' })).message).toContain(
      'RELAY_PLAIN_HTTP_REGISTRIES',
    );
    expect(configError(() => relayOptionsFromEnv({ RELAY_CORS_ORIGINS: '*' })).message).toContain('RELAY_CORS_ORIGINS');
  });
});

describe('allowlist', () => {
  it('by default reaches the public registries and their token hosts on 443 only', () => {
    const c = normaliseRelayOptions({});
    for (const host of DEFAULT_REGISTRIES) {
      expect(c.isDirect(h(host), 443), host).toBe(true);
      expect(c.isDirect(h(host), 80), host).toBe(false);
      expect(c.isDirect(h(host), 5000), host).toBe(false);
    }
    for (const host of ['registry-1.docker.io', 'auth.docker.io', 'ghcr.io', 'quay.io', 'gcr.io', 'us.gcr.io']) {
      expect(c.isDirect(h(host), 443), host).toBe(true);
    }
    for (const host of ['docker.io.evil.com', 'evil.gcr.io', 'localhost', 'example.com', 'ghcr.io.example']) {
      expect(c.isDirect(h(host), 443), host).toBe(false);
    }
  });

  it("admits Artifact Registry's regional hosts, bounded to one label ending in -docker", () => {
    const c = normaliseRelayOptions({});
    for (const host of ['us-docker.pkg.dev', 'europe-west4-docker.pkg.dev', 'northamerica-northeast1-docker.pkg.dev']) {
      expect(c.isDirect(h(host), 443), host).toBe(true);
      expect(c.isDirect(h(host), 8443), host).toBe(false);
    }
    for (const host of [
      'pkg.dev',
      'evil.pkg.dev',
      'a.us-docker.pkg.dev',
      'us-docker.pkg.dev.evil.com',
      'docker.pkg.dev',
    ]) {
      expect(c.isDirect(h(host), 443), host).toBe(false);
    }
    expect(normaliseRelayOptions({ allowedRegistries: ['ghcr.io'] }).isDirect(h('us-docker.pkg.dev'), 443)).toBe(false);
  });

  it('reaches blob storage hosts only as redirect targets', () => {
    const c = normaliseRelayOptions({});
    for (const host of DEFAULT_REDIRECT_TARGETS) {
      expect(c.isDirect(h(host), 443), host).toBe(false);
      expect(c.isRedirectTarget(h(host), 443), host).toBe(true);
    }
    expect(c.isRedirectTarget(h('ghcr.io'), 443)).toBe(true);
    expect(c.isRedirectTarget(h('example.com'), 443)).toBe(false);
  });

  it('replaces the defaults with RELAY_ALLOWED_REGISTRIES, matched on host and port exactly', () => {
    const c = normaliseRelayOptions({
      allowedRegistries: ['LocalHost:5000', 'registry.example', '127.0.0.1:5001', '[0:0::1]:7000', 'plain.example'],
      plainHttpRegistries: ['plain.example', '127.0.0.1:5001'],
    });
    expect(c.explicit).toBe(true);
    expect(c.isDirect(h('localhost'), 5000)).toBe(true);
    expect(c.isDirect(h('localhost'), 5001)).toBe(false);
    expect(c.isDirect(h('localhost'), 443)).toBe(false);
    expect(c.isDirect(h('registry.example'), 443)).toBe(true);
    expect(c.isDirect(h('registry.example'), 80)).toBe(false);
    // A plain-http host's entry without a port means port 80.
    expect(c.isDirect(h('plain.example'), 80)).toBe(true);
    expect(c.isDirect(h('plain.example'), 443)).toBe(false);
    expect(c.isDirect(h('[::1]'), 7000)).toBe(true);
    expect(c.isDirect(h('ghcr.io'), 443)).toBe(false);
    expect(c.isRedirectTarget(h('production.cloudflare.docker.com'), 443)).toBe(false);
    // Allowed is not private: only RELAY_PRIVATE_REGISTRIES lifts the address check.
    expect(c.mayBePrivate(h('localhost'), 5000)).toBe(false);
    expect(normaliseRelayOptions({}).mayBePrivate(h('ghcr.io'), 443)).toBe(false);
    const p = normaliseRelayOptions({
      allowedRegistries: ['localhost:5000', 'ghcr.io'],
      privateRegistries: ['localhost:5000'],
    });
    expect(p.mayBePrivate(h('localhost'), 5000)).toBe(true);
    expect(p.mayBePrivate(h('ghcr.io'), 443)).toBe(false);
  });

  it('refuses a private registry the relay may not reach, with a sentence', () => {
    expect(() =>
      normaliseRelayOptions({ allowedRegistries: ['ghcr.io'], privateRegistries: ['localhost:5000'] }),
    ).toThrow(/RELAY_PRIVATE_REGISTRIES holds localhost:5000, which the relay may not reach/);
    expect(
      relayOptionsFromEnv({ RELAY_ALLOWED_REGISTRIES: 'a.example', RELAY_PRIVATE_REGISTRIES: 'a.example' }),
    ).toMatchObject({
      privateRegistries: ['a.example'],
    });
  });

  it('chooses http only for listed plain-http registries, and the default port by scheme', () => {
    const c = normaliseRelayOptions({ plainHttpRegistries: ['localhost:5000', 'plain.example'] });
    expect(c.schemeFor(h('localhost'), 5000)).toEqual({ scheme: 'http', port: 5000 });
    expect(c.schemeFor(h('localhost'), 5001)).toEqual({ scheme: 'https', port: 5001 });
    expect(c.schemeFor(h('localhost'), undefined)).toEqual({ scheme: 'https', port: 443 });
    expect(c.schemeFor(h('plain.example'), undefined)).toEqual({ scheme: 'http', port: 80 });
    expect(c.schemeFor(h('ghcr.io'), undefined)).toEqual({ scheme: 'https', port: 443 });
  });

  it('describes itself in one start-up line', () => {
    expect(describeRelayConfig({})).toBe('relay: reaches the default public registries');
    expect(
      describeRelayConfig({ allowedRegistries: ['localhost:5000'], plainHttpRegistries: ['localhost:5000'] }),
    ).toBe('relay: reaches localhost:5000; plain http to localhost:5000');
  });
});

describe('CORS origins', () => {
  it('normalises origins and refuses anything else', () => {
    expect([...normaliseCorsOrigins(['https://App.Example', 'http://localhost:5173/', ' '])]).toEqual([
      'https://app.example',
      'http://localhost:5173',
    ]);
    for (const bad of [
      '*',
      'app.example',
      'https://app.example/path',
      'https://u:p@app.example',
      'ftp://app.example',
    ]) {
      configError(() => normaliseCorsOrigins([bad]));
    }
  });
});
