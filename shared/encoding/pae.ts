/**
 * DSSE's pre-authentication encoding, the bytes a DSSE signature covers (never the raw payload):
 * PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in bytes.
 * https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
 */
import { utf8 } from './base64.ts';

export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType);
  const head = utf8(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}
