// Messages between the page and the scrypt worker.
import type { ScryptImpl, ScryptParams } from '../../../../shared/crypto/scrypt.ts';

export interface ScryptRequest {
  id: number;
  password: Uint8Array;
  salt: Uint8Array;
  params: ScryptParams;
  impl: ScryptImpl | 'auto';
}

/**
 * Sent once when the Keys page opens: start, compile the WebAssembly and time a small run for the
 * progress estimate now, so "Unlock key" pays for scrypt alone.
 */
export interface ScryptWarmUp {
  warmUp: true;
}

export type ScryptResponse =
  | { id: number; type: 'estimate'; ms: number }
  | { id: number; type: 'progress'; fraction: number }
  | { id: number; type: 'done'; key: Uint8Array; impl: ScryptImpl; ms: number }
  | { id: number; type: 'error'; code: string; message: string };
