// Messages between the page and the file-hashing worker (hash.worker.ts).

/** To the worker: hash `file`. */
export interface HashRequest {
  file: File;
}

/** The worker → the page. */
export type HashResponse =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; digest: string }
  | { type: 'error'; message: string };
