/**
 * Graceful shutdown, as operators expect of an HTTP service behind a load balancer: on SIGTERM
 * (or SIGINT) the server stops accepting connections, answers /readyz with 503, lets the requests
 * in flight finish — relayed blob streams and PKCS#11 signs included — for at most the drain
 * time (SHUTDOWN_DRAIN_MS), then releases what it holds (tag locks, the lock store, the PKCS#11
 * module) and exits 0. A second signal exits at once (status 1).
 */
import type http from 'node:http';

export interface ShutdownOptions {
  server: http.Server;
  /** The longest the requests in flight may take to finish (default 30 000 ms). */
  drainMs: number;
  /** Releases locks and closes stores once the requests are done (bounded by 5 s). */
  cleanup: () => Promise<void>;
  log: (line: string) => void;
  /** The process's exit (a test hook); default process.exit. */
  exit?: (code: number) => void;
}

/**
 * A duration setting `name` (its `text`, or `fallback` when empty).
 * @throws Error with a sentence when it is not a number of milliseconds
 */
export function msFromEnv(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text.trim() === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a number of milliseconds, not "${text}".`);
  return n;
}

/** Reads SHUTDOWN_DRAIN_MS (default 30 s). @throws Error with a sentence when it is not a number of milliseconds */
export function drainMsFromEnv(text: string | undefined): number {
  return msFromEnv('SHUTDOWN_DRAIN_MS', text, 30_000);
}

/**
 * Counts the requests in flight and installs the signal handlers.
 * @returns whether the server is draining (for /readyz)
 */
export function gracefulShutdown(o: ShutdownOptions): { draining: () => boolean } {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let inFlight = 0;
  let draining = false;
  let check = (): void => undefined;
  o.server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight++;
    if (draining && !res.headersSent) res.setHeader('Connection', 'close');
    res.once('close', () => {
      inFlight--;
      check();
    });
  });

  const finish = async (why: string): Promise<void> => {
    check = () => undefined;
    o.log(`shutdown: ${why}; releasing locks and exiting`);
    o.server.closeAllConnections();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([o.cleanup().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    exit(0);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (draining) {
      o.log(`shutdown: ${signal} again, exiting now`);
      exit(1);
      return;
    }
    draining = true;
    o.log(`shutdown: ${signal}; no new connections, ${inFlight} requests in flight (waiting at most ${o.drainMs} ms)`);
    o.server.close();
    o.server.closeIdleConnections();
    // Keep-alive connections that go idle after their last answer are closed as they do.
    const idle = setInterval(() => o.server.closeIdleConnections(), 100);
    const deadline = setTimeout(() => {
      clearInterval(idle);
      void finish(`drain time over with ${inFlight} requests in flight`);
    }, o.drainMs);
    check = () => {
      if (inFlight > 0) return;
      clearInterval(idle);
      clearTimeout(deadline);
      void finish('every request finished');
    };
    check();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { draining: () => draining };
}
