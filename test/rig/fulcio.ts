// The REAL Fulcio (sigstore/fulcio v1.8.8, built by install-sigstore-services.sh) on 127.0.0.1, with
// an ephemeral CA and one OIDC issuer of the `email` type (test/rig/oidc-issuer.ts), for keyless
// signing tests.
//
// Facts found with the binary (test/rig/README.md lists them against SIGSTORE-STACK.md):
// - `fulcio serve --host=127.0.0.1 --port=P --grpc-host=127.0.0.1 --grpc-port=P2 --metrics-port=P3
//   --ca=ephemeralca --ct-log-url= --config-path=F --legacy-unix-domain-socket=@NAME`: the metrics
//   server binds every interface (`:P3`), so P3 is a free port; the legacy gRPC server listens on an
//   abstract unix socket, `@fulcio-legacy-grpc-socket` by default, so two Fulcios on one machine
//   need a name each. An empty --ct-log-url means no CT log and no SCT in the certificates.
// - The config is JSON: {"OIDCIssuers": {"<issuer URL>": {"IssuerURL", "ClientID", "Type": "email"}}};
//   Fulcio reads the issuer's discovery document and JWKS when the first token arrives.
// - The CA chain: `GET /api/v2/trustBundle` → {"chains":[{"certificates":[PEM leaf-first…]}]}.
// - `POST /api/v2/signingCert` takes {"credentials":{"oidcIdentityToken"},"publicKeyRequest":
//   {"publicKey":{"algorithm":"ECDSA","content":PEM},"proofOfPossession":b64 signature over the
//   token's `sub` claim}} — see shared/sigstore/fulcio.ts.
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, loopbackGet, spawnWatched, stopChild } from './registries.ts';
import { missingBinary, waitUntil } from './sigstore-services.ts';
import { baseEnv, CACHE_DIR } from './tools.ts';

export const FULCIO_BINARY = join(CACHE_DIR, 'go', 'fulcio-v1.8.8', 'fulcio');

export interface Fulcio {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The CA's chain, issuing certificate first, root last (PEM), and its file. */
  chainPem: string[];
  chainFile: string;
  logFile: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts Fulcio trusting `issuerUrl` (client id `clientId`, default `sigstore`) and waits until it
 * serves its trust bundle.
 * @throws Error when the binary is missing (run install.sh) or Fulcio does not start in time.
 */
export async function startFulcio(o: {
  dir: string;
  issuerUrl: string;
  clientId?: string;
  readyTimeoutMs?: number;
}): Promise<Fulcio> {
  if (!existsSync(FULCIO_BINARY)) throw missingBinary(FULCIO_BINARY);
  const configFile = join(o.dir, 'fulcio-config.json');
  await writeFile(
    configFile,
    JSON.stringify({
      OIDCIssuers: { [o.issuerUrl]: { IssuerURL: o.issuerUrl, ClientID: o.clientId ?? 'sigstore', Type: 'email' } },
    }),
  );
  const [port, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const logFile = join(o.dir, 'fulcio.log');
  const child = spawnWatched(
    [
      FULCIO_BINARY,
      'serve',
      '--host=127.0.0.1',
      `--port=${port}`,
      '--grpc-host=127.0.0.1',
      `--grpc-port=${grpcPort}`,
      `--metrics-port=${metricsPort}`,
      '--ca=ephemeralca',
      '--ct-log-url=',
      `--config-path=${configFile}`,
      `--legacy-unix-domain-socket=@fulcio-rig-${randomBytes(6).toString('hex')}`,
      '--log_type=prod',
    ],
    logFile,
    { ...baseEnv(), HOME: o.dir },
  );
  const url = `http://127.0.0.1:${port}`;
  let chainPem: string[] = [];
  try {
    await waitUntil('Fulcio', child, logFile, o.readyTimeoutMs ?? 60_000, async () => {
      const r = await loopbackGet(`${url}/api/v2/trustBundle`, { timeoutMs: 5_000 });
      if (r.status !== 200) return false;
      const bundle = JSON.parse(r.body.toString('utf8')) as { chains?: { certificates?: string[] }[] };
      chainPem = (bundle.chains?.[0]?.certificates ?? []).map((p) => p.trimEnd() + '\n');
      return chainPem.length > 0;
    });
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  const chainFile = join(o.dir, 'fulcio-chain.pem');
  await writeFile(chainFile, chainPem.join(''));
  return { url, chainPem, chainFile, logFile, child, stop: () => stopChild(child) };
}

/**
 * `cosign verify` (3.1) by certificate identity against a trusted root: `--insecure-ignore-sct`
 * because the rig's Fulcio has no CT log; the transparency log is required (no
 * `--insecure-ignore-tlog`).
 */
export function cosign3VerifyIdentityArgs(
  ref: string,
  identity: string,
  issuer: string,
  trustedRoot: string,
): string[] {
  return [
    'verify',
    '--certificate-identity',
    identity,
    '--certificate-oidc-issuer',
    issuer,
    '--trusted-root',
    trustedRoot,
    '--insecure-ignore-sct',
    ref,
  ];
}
