/**
 * What operators watch a server by: the /metrics counters in the Prometheus text format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/, made by prom-client), who may
 * read them (METRICS_ALLOW), and LOG_FORMAT=json's one JSON object per log line.
 *
 * Metrics never carry a credential, a query, a body or a repository name: the relay's upstream is
 * its `host[:port]` alone, a refusal its code, a PKCS#11 sign its outcome code.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayRecord } from './relay/config.ts';

/** Which part of the server a request went to, as the `route` label of the request counters. */
export function routeOf(path: string): string {
  for (const r of ['relay', 'locks', 'pkcs11']) if (path === `/${r}` || path.startsWith(`/${r}/`)) return r;
  if (path === '/healthz' || path === '/readyz' || path === '/metrics' || path === '/config.json') return path.slice(1);
  return 'page';
}

/** The server's metrics, in their own registry. */
export class Metrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'status'>;
  readonly #refusals: Counter<'code'>;
  readonly #bytes: Counter<'direction'>;
  readonly #upstream: Histogram<'upstream'>;
  readonly #relayed: Histogram<'upstream'>;
  readonly #pkcs11: Counter<'outcome'>;
  #lockCounts: () => { held: number; waiting: number } = () => ({ held: 0, waiting: 0 });

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'cosign_web_' });
    this.#requests = new Counter({
      name: 'cosign_web_http_requests_total',
      help: 'Requests answered, by route (relay, locks, pkcs11, page, …) and status.',
      labelNames: ['route', 'status'],
      registers,
    });
    this.#refusals = new Counter({
      name: 'cosign_web_refusals_total',
      help: "Requests this server refused or failed, by the error's code.",
      labelNames: ['code'],
      registers,
    });
    this.#bytes = new Counter({
      name: 'cosign_web_relay_bytes_total',
      help: 'Body bytes the relay passed on: up (to registries) and down (to pages).',
      labelNames: ['direction'],
      registers,
    });
    const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    this.#upstream = new Histogram({
      name: 'cosign_web_relay_upstream_seconds',
      help: "Time from a relayed request's start to the registry's answer headers, by registry host.",
      labelNames: ['upstream'],
      buckets,
      registers,
    });
    this.#relayed = new Histogram({
      name: 'cosign_web_relay_request_seconds',
      help: 'Time from a relayed request to the end of its answer body, by registry host.',
      labelNames: ['upstream'],
      buckets: [...buckets, 120, 600],
      registers,
    });
    this.#pkcs11 = new Counter({
      name: 'cosign_web_pkcs11_signs_total',
      help: "PKCS#11 signing requests, by outcome ('ok' or the error code).",
      labelNames: ['outcome'],
      registers,
    });
    const counts = (): { held: number; waiting: number } => this.#lockCounts();
    new Gauge({
      name: 'cosign_web_locks_held',
      help: 'Tag locks this server holds for its clients now.',
      registers,
      collect() {
        this.set(counts().held);
      },
    });
    new Gauge({
      name: 'cosign_web_locks_waiting',
      help: 'Lock requests waiting at this server now.',
      registers,
      collect() {
        this.set(counts().waiting);
      },
    });
  }

  /** Where the lock gauges read their numbers. */
  lockCounts(f: () => { held: number; waiting: number }): void {
    this.#lockCounts = f;
  }

  request(path: string, status: number): void {
    this.#requests.inc({ route: routeOf(path), status: String(status) });
  }

  refusal(code: string): void {
    this.#refusals.inc({ code });
  }

  /** One relayed request, from its log record. */
  relayed(r: RelayRecord): void {
    this.#bytes.inc({ direction: 'up' }, r.bytesUp);
    this.#bytes.inc({ direction: 'down' }, r.bytesDown);
    if (r.upstream === '-') return;
    if (r.upstreamMs !== undefined) this.#upstream.observe({ upstream: r.upstream }, r.upstreamMs / 1000);
    this.#relayed.observe({ upstream: r.upstream }, r.ms / 1000);
  }

  /** One PKCS#11 audit line: its last field is the outcome (server/pkcs11/audit.ts). */
  pkcs11Audit(line: string): void {
    if (line.startsWith('pkcs11 sign ')) this.#pkcs11.inc({ outcome: line.slice(line.lastIndexOf(' ') + 1) });
  }
}

/** The default of METRICS_ALLOW: loopback only. */
export const DEFAULT_METRICS_ALLOW = '127.0.0.0/8,::1/128';

/**
 * Who may read /metrics: METRICS_ALLOW, a comma-separated list of addresses and CIDR blocks
 * (IPv4 and IPv6), `*` for anyone; an IPv4-mapped IPv6 address counts as its IPv4 address.
 * @throws Error with a sentence for an entry that is neither
 */
export function parseMetricsAllow(text: string | undefined): (address: string) => boolean {
  const spec = (text ?? '').trim() === '' ? DEFAULT_METRICS_ALLOW : text!.trim();
  if (spec === '*') return () => true;
  const list = new BlockList();
  for (const entry of spec.split(',').map((e) => e.trim())) {
    const [address = '', prefix] = entry.split('/');
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    const bits = prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix);
    if (family === undefined || !Number.isInteger(bits) || bits < 0 || bits > (family === 'ipv4' ? 32 : 128)) {
      throw new Error(
        `METRICS_ALLOW must list addresses or CIDR blocks separated by commas (or be *), and "${entry}" is neither.`,
      );
    }
    list.addSubnet(address, bits, family);
  }
  return (address) => {
    const a = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    if (isIPv4(a)) return list.check(a, 'ipv4');
    return isIPv6(a) && list.check(a, 'ipv6');
  };
}

/** The fields of a relay or PKCS#11 audit line; others are a message. */
function fieldsOf(line: string): Record<string, unknown> {
  if (line.startsWith('pkcs11 sign ')) {
    const out: Record<string, unknown> = { msg: 'pkcs11 sign' };
    const parts = line.slice('pkcs11 sign '.length).split(' ');
    for (const p of parts.slice(0, -1)) {
      const eq = p.indexOf('=');
      if (eq > 0) out[p.slice(0, eq)] = p.slice(eq + 1);
    }
    out['outcome'] = parts[parts.length - 1];
    return out;
  }
  return { msg: line };
}

/**
 * A JSON log line: `{"time", "level", …the text line's fields}`; a relay request's fields come
 * from its record (`relayRecordJson`), a PKCS#11 audit line's from its `key=value` fields.
 */
export function jsonLogLine(level: 'info' | 'error', line: string): string {
  return JSON.stringify({ time: new Date().toISOString(), level, ...fieldsOf(line) });
}

/** A relayed request as a JSON log line, with the text line's fields. */
export function relayRecordJson(r: RelayRecord): string {
  return JSON.stringify({
    time: new Date().toISOString(),
    level: 'info',
    msg: 'relay',
    method: r.method,
    upstream: r.upstream,
    path: r.path,
    status: r.status,
    up: r.bytesUp,
    down: r.bytesDown,
    ms: r.ms,
    ...(r.redirects > 0 ? { redirects: r.redirects } : {}),
    ...(r.note !== '' ? { note: r.note } : {}),
  });
}

/** LOG_FORMAT=json: console.log and console.error write one JSON object per line from now on. */
export function useJsonLogs(): void {
  const out = (level: 'info' | 'error', args: unknown[]): void => {
    const line = args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.name : String(a))).join(' ');
    (level === 'error' ? process.stderr : process.stdout).write(`${jsonLogLine(level, line)}\n`);
  };
  console.log = (...args: unknown[]) => out('info', args);
  console.error = (...args: unknown[]) => out('error', args);
}
