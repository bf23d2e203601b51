/**
 * Signers for the many-relays tests (issue 16): each with its own P-256 key, signing one image
 * through a relay (the page's way: registry requests under /relay/, the relay's tag locks taken
 * through /locks as web/src/app/relay-lock.ts takes them), and the check that every signature a
 * signer reported kept is in the registry in both formats.
 */
import { parsePkcs8 } from '../../shared/crypto/pkcs.ts';
import {
  exportPkcs8,
  generateEcdsaKeyPair,
  importPublicKey,
  signWithCryptoKey,
  verifyWithCryptoKey,
} from '../../shared/crypto/webcrypto.ts';
import { fromBase64 } from '../../shared/encoding/base64.ts';
import { RegistryClient, relayRouting } from '../../shared/registry/client.ts';
import type { Descriptor } from '../../shared/registry/mediatypes.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import { SIGNATURE_ANNOTATION, referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import { relayLock } from '../../web/src/app/relay-lock.ts';
import { caFetch } from './ca-fetch.ts';

export async function makeSigners(n: number): Promise<Signer[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const pair = await generateEcdsaKeyPair('P-256', true);
      const info = parsePkcs8(await exportPkcs8(pair.privateKey));
      return {
        algorithm: info.algorithm,
        spki: info.spki,
        sign: (d: Uint8Array) => signWithCryptoKey(pair.privateKey, info.algorithm, d),
      };
    }),
  );
}

/** A client that reaches registries through the relay served at `origin`. */
export function relayClient(origin: string): RegistryClient {
  return new RegistryClient({ fetch: (input, init) => fetch(input, init), ...relayRouting(origin) });
}

/**
 * Signs `registry/repository:tag` with every signer at once, signer i through `origins[i % n]`,
 * both formats, each with the relay's locks.
 * @returns each signer's outcome: 'kept' or the error's code
 */
export async function signThroughRelays(
  origins: readonly string[],
  signers: readonly Signer[],
  image: { registry: string; repository: string; tag: string },
): Promise<string[]> {
  const repo = { registry: image.registry, repository: image.repository };
  const plan = await planSigning(relayClient(origins[0]!), repo, image.tag);
  const results = await Promise.allSettled(
    signers.map((signer, i) => {
      const origin = origins[i % origins.length]!;
      return signImage({
        client: relayClient(origin),
        signer,
        plan,
        dockerReference: `${image.registry}/${image.repository}:${image.tag}`,
        formats: { legacy: true, bundle: true },
        lock: relayLock(origin),
      });
    }),
  );
  return results.map((r) =>
    r.status === 'fulfilled' ? 'kept' : ((r.reason as { code?: string }).code ?? String(r.reason)),
  );
}

/**
 * Reads the image's `.sig` manifest and referrers index straight from the registry.
 * @returns which signers' signatures the `.sig` manifest holds (by index), and how many referrers there are
 */
export async function signaturesOnRegistry(
  caFile: string,
  repo: { registry: string; repository: string },
  digest: string,
  signers: readonly { spki: Uint8Array }[],
): Promise<{ legacy: Set<number>; referrers: number }> {
  const client = new RegistryClient({ fetch: caFetch(caFile) });
  const sig = await client.getManifest(repo, sigTag(digest));
  const keys = await Promise.all(signers.map((s) => importPublicKey(s.spki)));
  const legacy = new Set<number>();
  for (const layer of sig.json.layers as Descriptor[]) {
    const payload = await client.getBlob(repo, layer.digest, layer.size);
    const signature = fromBase64(layer.annotations![SIGNATURE_ANNOTATION]!)!;
    for (const [i, k] of keys.entries())
      if (await verifyWithCryptoKey(k.key, k.algorithm, payload, signature)) legacy.add(i);
  }
  const index = await client.getManifest(repo, referrersTag(digest));
  return { legacy, referrers: new Set((index.json.manifests as Descriptor[]).map((d) => d.digest)).size };
}

/**
 * Signers told their signature was kept whose signature is not in the `.sig` manifest, and
 * signers that failed with anything but SIGNATURE_WRITE_LOST: empty when nothing was lost silently.
 */
export function silentLosses(outcomes: readonly string[], legacy: Set<number>): string[] {
  return outcomes.flatMap((o, i) =>
    o === 'kept'
      ? legacy.has(i)
        ? []
        : [`signer ${i} was told its signature was kept, and it is not there`]
      : o === 'SIGNATURE_WRITE_LOST'
        ? []
        : [`signer ${i} failed with ${o}`],
  );
}
