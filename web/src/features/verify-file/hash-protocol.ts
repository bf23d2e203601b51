// Messages between the page and the file-hashing worker (hash.worker.ts).

export interface HashRequest {
  file: File;
  /** Bytes read at a time. */
  chunk: number;
}

export type HashResponse =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; digest: string }
  | { type: 'error'; message: string };
