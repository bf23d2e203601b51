// A loopback HTTP proxy in front of one real service (a Rekor v1 or v2 log, a timestamp authority) that
// passes requests through untouched and alters the service's answer on its way back, for tests
// that prove an answer which does not verify is refused before anything is pushed. Plain HTTP on
// 127.0.0.1 only; `tamper` picks what to change (null: pass the answer as it is).
import http from 'node:http';
import type net from 'node:net';

export interface TamperProxy {
  /** `http://127.0.0.1:<port>`: the upstream's paths under this origin. */
  url: string;
  /** How many answers were altered so far. */
  tampered(): number;
  close(): Promise<void>;
}

/** Alters an answer's body: the status, content type and body are given; return null to leave it. */
export type Tamper = (answer: { status: number; contentType: string; body: Buffer; path: string }) => Buffer | null;

/** Starts a proxy to `upstream` (`http://127.0.0.1:<port>`) that applies `tamper` to each answer. */
export async function startTamperProxy(upstream: string, tamper: Tamper): Promise<TamperProxy> {
  const target = new URL(upstream);
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            const original = Buffer.concat(body);
            const changed = tamper({
              status: answer.statusCode ?? 502,
              contentType: String(answer.headers['content-type'] ?? ''),
              body: original,
              path: req.url ?? '/',
            });
            if (changed) count++;
            const out = changed ?? original;
            const headers = { ...answer.headers, 'content-length': String(out.length) };
            delete headers['transfer-encoding'];
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(out);
          });
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tampered: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Flips the low bit of the last byte of a base64 string. */
export function flipBase64(b64: string): string {
  const bytes = Buffer.from(b64, 'base64');
  bytes[bytes.length - 1]! ^= 0x01;
  return bytes.toString('base64');
}

/** A Rekor v2 answer whose inclusion proof's first sibling hash (or, with none, its root hash) is changed. */
export const tamperRekorProof: Tamper = ({ status, body }) => {
  if (status !== 201 && status !== 200) return null;
  const entry = JSON.parse(body.toString('utf8')) as { inclusionProof: { hashes?: string[]; rootHash: string } };
  const proof = entry.inclusionProof;
  if (proof.hashes?.length) proof.hashes[0] = flipBase64(proof.hashes[0]!);
  else proof.rootHash = flipBase64(proof.rootHash);
  return Buffer.from(JSON.stringify(entry));
};

/** A Rekor v1 answer (`{"<uuid>": LogEntry}`) whose signed entry timestamp is changed. */
export const tamperRekorV1Set: Tamper = ({ status, body }) => {
  if (status !== 201 && status !== 200) return null;
  const answer = JSON.parse(body.toString('utf8')) as Record<
    string,
    { verification: { signedEntryTimestamp: string } }
  >;
  for (const entry of Object.values(answer))
    entry.verification.signedEntryTimestamp = flipBase64(entry.verification.signedEntryTimestamp);
  return Buffer.from(JSON.stringify(answer));
};

/** A timestamp authority's answer with its last byte (inside the CMS signature) changed. */
export const tamperTimestamp: Tamper = ({ status, body }) => {
  if (status !== 200 && status !== 201) return null;
  const out = Buffer.from(body);
  out[out.length - 1]! ^= 0x01;
  return out;
};
