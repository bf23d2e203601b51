/**
 * Signing configs (shared/sigstore/signing-config.ts) and the one shipped with the page
 * (shipped-signing-config.ts): the shipped text is the bytes its source publishes (SHA-256 as
 * recorded) and reads whole; what cosign 3.1 `signing-config create` writes reads; a config with
 * an unknown field, another media type, a service without a URL, version or start, or a bad
 * selector is refused with SIGNING_CONFIG_INVALID; services are selected as sigstore-go's
 * SelectService/SelectServices select them (cases from its signing_config_test.go); arbitrary and
 * edited input gives only SIGNING_CONFIG_INVALID (fuzzed; `npm run fuzz` runs it at 10,000).
 * Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SigningServiceError } from '../../../../shared/errors.ts';
import { toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { sha256Bytes } from '../../../../shared/crypto/digest.ts';
import {
  parseSigningConfig,
  selectService,
  selectServices,
  type SigningService,
} from '../../../../shared/sigstore/signing-config.ts';
import { PUBLIC_GOOD_SIGNING_CONFIG } from '../../../../shared/sigstore/shipped-signing-config.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';
import { deeplyNested, mutated } from '../../../fuzz/mutate.ts';

/** What cosign 3.1 `signing-config create --rekor=…,api-version=2 --rekor-config=ANY --tsa=… --tsa-config=ANY` wrote. */
const COSIGN_MADE =
  '{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","rekorTlogUrls":[{"url":"http://127.0.0.1:1234","majorApiVersion":2,"validFor":{"start":"2026-12-03T12:00:00Z"},"operator":"cosign-web rig"}],"rekorTlogConfig":{"selector":"ANY"},"tsaUrls":[{"url":"http://127.0.0.1:2345/api/v1/timestamp","majorApiVersion":1,"validFor":{"start":"2026-12-03T12:00:00Z"},"operator":"cosign-web rig"}],"tsaConfig":{"selector":"ANY"}}';

const code = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(SigningServiceError);
    return (e as SigningServiceError).code;
  }
};

const svc = (url: string, majorApiVersion: number, start: string, end?: string, operator = 'op'): SigningService => ({
  url,
  majorApiVersion,
  validFor: { start: new Date(start), ...(end ? { end: new Date(end) } : {}) },
  operator,
});

describe('reading', () => {
  it('the shipped public-good config is the recorded bytes and names Fulcio, the OIDC issuer, Rekor v1 and the TSA', () => {
    expect(toHex(sha256Bytes(utf8(PUBLIC_GOOD_SIGNING_CONFIG.json)))).toBe(PUBLIC_GOOD_SIGNING_CONFIG.sha256);
    const sc = parseSigningConfig(PUBLIC_GOOD_SIGNING_CONFIG.json);
    expect(sc.caUrls.map((s) => s.url)).toEqual(['https://fulcio.sigstore.dev']);
    expect(sc.oidcUrls.map((s) => s.url)).toEqual(['https://oauth2.sigstore.dev/auth']);
    expect(sc.rekorTlogUrls.map((s) => [s.url, s.majorApiVersion])).toEqual([['https://rekor.sigstore.dev', 1]]);
    expect(sc.tsaUrls.map((s) => s.url)).toEqual(['https://timestamp.sigstore.dev/api/v1/timestamp']);
    expect(sc.rekorTlogConfig).toEqual({ selector: 'ANY', count: 0 });
    // The page logs to Rekor v2 only: the public-good config (v1 only) offers it no log yet …
    expect(code(() => selectServices(sc.rekorTlogUrls, sc.rekorTlogConfig, [2], new Date()))).toBe(
      'SIGNING_CONFIG_NO_SERVICE',
    );
    // … but its timestamp authority.
    expect(selectServices(sc.tsaUrls, sc.tsaConfig, [1], new Date())[0]!.operator).toBe('sigstore.dev');
  });

  it("reads what cosign 3.1 writes, and protobuf's snake_case names and numeric selectors", () => {
    const sc = parseSigningConfig(COSIGN_MADE);
    expect(sc.rekorTlogUrls[0]).toEqual(
      svc('http://127.0.0.1:1234', 2, '2026-12-03T12:00:00Z', undefined, 'cosign-web rig'),
    );
    const snake = COSIGN_MADE.replace('rekorTlogUrls', 'rekor_tlog_urls')
      .replace('majorApiVersion', 'major_api_version')
      .replace('"selector":"ANY"', '"selector":3,"count":1');
    const s2 = parseSigningConfig(snake);
    expect(s2.rekorTlogUrls[0]!.majorApiVersion).toBe(2);
    expect(s2.rekorTlogConfig).toEqual({ selector: 'EXACT', count: 1 });
  });

  it.each([
    ['another media type', COSIGN_MADE.replace('v0.2+json', 'v0.1+json')],
    ['an unknown field', COSIGN_MADE.replace('"tsaConfig"', '"extra":1,"tsaConfig"')],
    ['an unknown service field', COSIGN_MADE.replace('"operator":"cosign-web rig"', '"operator":"x","apiVersion":2')],
    ['a service without its url', COSIGN_MADE.replace('"url":"http://127.0.0.1:1234",', '')],
    ['a url that is not http(s)', COSIGN_MADE.replace('http://127.0.0.1:1234', 'ftp://127.0.0.1')],
    ['a url with credentials', COSIGN_MADE.replace('http://127.0.0.1:1234', 'http://u:p@127.0.0.1')],
    ['a version of 0', COSIGN_MADE.replace('"majorApiVersion":2', '"majorApiVersion":0')],
    ['a version that is text', COSIGN_MADE.replace('"majorApiVersion":2', '"majorApiVersion":"two"')],
    ['no validity start', COSIGN_MADE.replace('{"start":"2026-12-03T12:00:00Z"}', '{}')],
    ['a start that is no time', COSIGN_MADE.replace('2026-12-03T12:00:00Z', 'yesterday')],
    [
      'an end before its start',
      COSIGN_MADE.replace(
        '{"start":"2026-12-03T12:00:00Z"}',
        '{"start":"2026-12-03T12:00:00Z","end":"2020-01-01T00:00:00Z"}',
      ),
    ],
    ['a selector that is none', COSIGN_MADE.replace('"selector":"ANY"', '"selector":"SOME"')],
    ['a name given twice', COSIGN_MADE.replace('"rekorTlogConfig"', '"rekor_tlog_urls":[],"rekorTlogConfig"')],
    ['a list that is not one', COSIGN_MADE.replace(/"tsaUrls":\[.*?\],/, '"tsaUrls":{},')],
    ['not JSON', '{"mediaType":'],
  ])('refuses %s with SIGNING_CONFIG_INVALID', (_what, text) => {
    expect(code(() => parseSigningConfig(text))).toBe('SIGNING_CONFIG_INVALID');
  });

  it('arbitrary bytes, JSON, edited and deeply nested configs: a config or SIGNING_CONFIG_INVALID', () => {
    const seeds = [utf8(COSIGN_MADE), utf8(PUBLIC_GOOD_SIGNING_CONFIG.json)];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.json().map((j) => utf8(j)),
          mutated(seeds),
          deeplyNested([COSIGN_MADE]).map((t) => utf8(t)),
        ),
        (bytes) => {
          expect(['ok', 'SIGNING_CONFIG_INVALID']).toContain(code(() => parseSigningConfig(bytes)));
        },
      ),
      { numRuns: fuzzRuns(300) },
    );
  });
});

describe('selecting as sigstore-go does', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const services = [
    svc('https://old-v1', 1, '2020-01-01T00:00:00Z', undefined, 'a'),
    svc('https://new-v1', 1, '2025-01-01T00:00:00Z', undefined, 'a'),
    svc('https://v2-a', 2, '2025-06-01T00:00:00Z', undefined, 'a'),
    svc('https://v2-b', 2, '2025-07-01T00:00:00Z', undefined, 'b'),
    svc('https://v2-ended', 2, '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z', 'c'),
    svc('https://v3-future', 3, '2030-01-01T00:00:00Z', undefined, 'd'),
  ];

  it('SelectService: the highest supported version, then the newest start, valid now', () => {
    expect(selectService(services, [1, 2], now).url).toBe('https://v2-b');
    expect(selectService(services, [1], now).url).toBe('https://new-v1');
    expect(selectService(services, [1, 2, 3], now).url).toBe('https://v2-b'); // v3 is not valid yet
    expect(code(() => selectService(services, [4], now))).toBe('SIGNING_CONFIG_NO_SERVICE');
  });

  it('SelectServices: one per operator of the highest version any valid service speaks; ALL, ANY, EXACT', () => {
    const all = selectServices(services, { selector: 'ALL', count: 0 }, [1, 2], now);
    expect(all.map((s) => s.url)).toEqual(['https://v2-b', 'https://v2-a']);
    expect(selectServices(services, { selector: 'ANY', count: 0 }, [1, 2], now, 'log', () => 0.99)[0]!.url).toBe(
      'https://v2-a',
    );
    expect(selectServices(services, { selector: 'ANY', count: 0 }, [1, 2], now, 'log', () => 0)[0]!.url).toBe(
      'https://v2-b',
    );
    expect(selectServices(services, { selector: 'EXACT', count: 2 }, [2], now)).toHaveLength(2);
    // One per operator: both v1 services are operator a's.
    expect(selectServices(services, { selector: 'ALL', count: 0 }, [1], now).map((s) => s.url)).toEqual([
      'https://new-v1',
    ]);
    expect(code(() => selectServices(services, { selector: 'EXACT', count: 3 }, [2], now))).toBe(
      'SIGNING_CONFIG_NO_SERVICE',
    );
    expect(code(() => selectServices(services, { selector: 'EXACT', count: 0 }, [2], now))).toBe(
      'SIGNING_CONFIG_INVALID',
    );
    expect(code(() => selectServices(services, { selector: 'UNDEFINED', count: 0 }, [2], now))).toBe(
      'SIGNING_CONFIG_INVALID',
    );
    expect(code(() => selectServices(services, { selector: 'ALL', count: 0 }, [2], new Date('2019-01-01')))).toBe(
      'SIGNING_CONFIG_NO_SERVICE',
    );
  });
});
