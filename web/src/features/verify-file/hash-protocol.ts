// Messages between the page, the file-reading worker (read.worker.ts) and the hashing worker
// (hash.worker.ts). The two workers talk over a MessageChannel: the reader transfers each slice's
// ArrayBuffer (no copy) and the hasher hands back one credit per slice it has hashed, so at most
// `depth` slices wait between them.

/** To the reader: read `file` in slices of `chunk` bytes and send them down `port`. */
export interface ReadRequest {
  file: File;
  chunk: number;
  /** Slices sent ahead of the hasher (the memory both workers hold is about (depth + 1) × chunk). */
  depth: number;
  port: MessagePort;
}

/** To the hasher: hash the `total` bytes that arrive on `port`. */
export interface HashRequest {
  total: number;
  port: MessagePort;
}

/** Reader → hasher: a slice, or null after the last one. Hasher → reader: `true`, one more slice. */
export type SliceMessage = ArrayBuffer | null;

/** Either worker → the page. */
export type HashResponse =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; digest: string }
  | { type: 'error'; message: string };
