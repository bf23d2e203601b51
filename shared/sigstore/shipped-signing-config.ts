/**
 * The Sigstore signing config that ships with the page, byte for byte as its source publishes it
 * (a test checks the SHA-256 of the text below against the value written here): sigstore-python
 * 4.5.1's (PyPI wheel) `sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/signing_config.v0.2.json`,
 * the public-good TUF repository's `signing_config.v0.2.json` target. Its services (Fulcio,
 * Sigstore's OIDC issuer, Rekor v1 at rekor.sigstore.dev, the timestamp authority at
 * timestamp.sigstore.dev) are reached through the relay, whose default allowlist names their hosts
 * (server/relay/config.ts DEFAULT_SIGSTORE_SERVICES).
 */

export interface ShippedSigningConfig {
  id: 'public-good';
  name: string;
  source: string;
  sha256: string;
  json: string;
}

export const PUBLIC_GOOD_SIGNING_CONFIG: ShippedSigningConfig = {
  id: 'public-good',
  name: 'Sigstore public good',
  source: 'PyPI sigstore 4.5.1 wheel, sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/signing_config.v0.2.json',
  sha256: '9711a6d5375706957a4859af31c5866a4474f81f0544f9f4b76c9c4f4c8a539c',
  json: `{
  "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
  "caUrls": [
    {
      "url": "https://fulcio.sigstore.dev",
      "majorApiVersion": 1,
      "validFor": {
        "start": "2022-04-13T20:06:15.000Z"
      },
      "operator": "sigstore.dev"
    }
  ],
  "oidcUrls": [
    {
      "url": "https://oauth2.sigstore.dev/auth",
      "majorApiVersion": 1,
      "validFor": {
        "start": "2022-04-13T20:06:15.000Z"
      },
      "operator": "sigstore.dev"
    }
  ],
  "rekorTlogUrls": [
    {
      "url": "https://rekor.sigstore.dev",
      "majorApiVersion": 1,
      "validFor": {
        "start": "2021-01-12T11:53:27.000Z"
      },
      "operator": "sigstore.dev"
    }
  ],
  "tsaUrls": [
    {
      "url": "https://timestamp.sigstore.dev/api/v1/timestamp",
      "majorApiVersion": 1,
      "validFor": {
        "start": "2025-07-04T00:00:00Z"
      },
      "operator": "sigstore.dev"
    }
  ],
  "rekorTlogConfig": {
    "selector": "ANY"
  },
  "tsaConfig": {
    "selector": "ANY"
  }
}
`,
};
