/**
 * MetricsServer: the Prometheus scrape endpoint. Serves exactly `GET /metrics` (also `HEAD`),
 * 404 for every other path, 405 for other methods on /metrics; binds 127.0.0.1 unless told
 * otherwise; `close()` stops it and ends open connections.
 *
 * A scrape is one small request sent at once, so the server holds no connection for long: a
 * client that sends its headers slowly (slowloris), a request that never completes, a silent
 * connection and an idle keep-alive are all closed within seconds (see {@link MetricsServerOptions}),
 * where Node's defaults would keep them a minute or more.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidArgumentError } from '../errors.js';
import { checkTimerMs } from '../core/options.js';
import type { LatencyHistogram } from './latency-histogram.js';
import { createMetricsRegistry, type MetricsKernel, type MetricsReplica } from './prometheus.js';

/** Connection limits of a MetricsServer, in milliseconds (integers in [1, 2^31 − 1]). */
export interface MetricsServerOptions {
  /** Time to receive a request's headers from the first byte (default 5,000). */
  readonly headersTimeoutMs?: number;
  /** Time to receive a whole request (default 10,000; at least `headersTimeoutMs`). */
  readonly requestTimeoutMs?: number;
  /** How long a connection may wait for its next request after a response (default 5,000). */
  readonly keepAliveTimeoutMs?: number;
  /** How long a connection may stay silent, in any state, before it is closed (default 10,000). */
  readonly idleTimeoutMs?: number;
}

/**
 * Prometheus sends a scrape's few hundred bytes of headers at once; 5 s is ample on any network
 * that can scrape at all, and a twelfth of Node's 60 s.
 */
const DEFAULT_HEADERS_TIMEOUT_MS = 5_000;
/** A scrape is a GET without a body; 10 s is also Prometheus's default scrape timeout. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Node's own keep-alive default: Prometheus scrapes every 15 s or more, so it reconnects anyway. */
const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A silent connection (opened, nothing sent, or the peer gone without a FIN) goes after 10 s. */
const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
/**
 * Node checks the headers and request timeouts on a timer (every 30 s by default, which would
 * stretch a 5 s limit to 35 s); checking every quarter of the shorter limit closes a connection
 * within 1.25 times it.
 */
const CHECKS_PER_TIMEOUT = 4;

/** Where to listen: "host:port", a port number (127.0.0.1), or { host, port }. Port 0 picks a free one. */
export type MetricsAddress = string | number | { readonly host?: string; readonly port?: number };

function parseAddress(addr: MetricsAddress): { host: string; port: number } {
  let host = '127.0.0.1';
  let port: unknown = addr;
  if (typeof addr === 'string') {
    const colon = addr.lastIndexOf(':');
    if (colon < 0) throw new InvalidArgumentError(`metrics address "${addr}" is not host:port`);
    host = addr.slice(0, colon).replace(/^\[|\]$/g, '') || host;
    const text = addr.slice(colon + 1);
    if (!/^\d{1,5}$/.test(text)) throw new InvalidArgumentError(`metrics address "${addr}" has no decimal port`);
    port = Number(text);
  } else if (addr !== null && typeof addr === 'object') {
    host = addr.host ?? host;
    port = addr.port ?? 0;
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`metrics port must be an integer from 0 to 65535`);
  }
  return { host, port };
}

export class MetricsServer {
  readonly registry: Registry;
  private readonly server: http.Server;

  private constructor(registry: Registry, server: http.Server) {
    this.registry = registry;
    this.server = server;
  }

  /**
   * Starts serving `admission` (and `persistence`, and any `kernels` and replicating nodes) on `addr`; resolves once
   * listening. Rejects if the address cannot be bound, or an option is invalid (InvalidArgument).
   */
  static async spawn(
    addr: MetricsAddress,
    admission: LatencyHistogram,
    persistence?: LatencyHistogram,
    options: { kernels?: Readonly<Record<string, MetricsKernel>>; replication?: Readonly<Record<string, MetricsReplica>> } & MetricsServerOptions = {},
  ): Promise<MetricsServer> {
    const { host, port } = parseAddress(addr);
    const headersTimeout = checkTimerMs('headersTimeoutMs', options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS);
    const requestTimeout = checkTimerMs('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    const keepAliveTimeout = checkTimerMs('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
    const idleTimeout = checkTimerMs('idleTimeoutMs', options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    // Node refuses a headers limit beyond the request limit (the request includes its headers).
    if (headersTimeout > requestTimeout) throw new InvalidArgumentError(`headersTimeoutMs (${headersTimeout}) must not exceed requestTimeoutMs (${requestTimeout})`);
    const registry = createMetricsRegistry({ admission, persistence, kernels: options.kernels, replication: options.replication });
    const serverOptions: http.ServerOptions = {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout,
      connectionsCheckingInterval: Math.max(1, Math.floor(headersTimeout / CHECKS_PER_TIMEOUT)),
    };
    const server = http.createServer(serverOptions, (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${(error as Error).message}\n`);
        },
      );
    });
    // Silence in any state (no request yet, half-sent, the peer gone): Node destroys the socket
    // when it times out and nobody listens for 'timeout'.
    server.setTimeout(idleTimeout);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new MetricsServer(registry, server);
  }

  /** The bound address (the real port when 0 was asked for). */
  get address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** http://host:port/metrics */
  get url(): string {
    const { host, port } = this.address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  }

  /** Stops listening and closes open connections. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.close((error) => (error ? reject(error) : resolve()));
      this.server.closeAllConnections();
    });
  }
}
