/**
 * MetricsServer: the Prometheus scrape endpoint. Serves exactly `GET /metrics` (also `HEAD`),
 * 404 for every other path, 405 for other methods on /metrics; binds 127.0.0.1 unless told
 * otherwise; `close()` stops it and ends open connections.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidArgumentError } from '../errors.js';
import type { LatencyHistogram } from './latency-histogram.js';
import { createMetricsRegistry, type MetricsKernel } from './prometheus.js';

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
   * Starts serving `admission` (and `persistence`, and any `kernels`) on `addr`; resolves once
   * listening. Rejects if the address cannot be bound.
   */
  static async spawn(
    addr: MetricsAddress,
    admission: LatencyHistogram,
    persistence?: LatencyHistogram,
    options: { kernels?: Readonly<Record<string, MetricsKernel>> } = {},
  ): Promise<MetricsServer> {
    const { host, port } = parseAddress(addr);
    const registry = createMetricsRegistry({ admission, persistence, kernels: options.kernels });
    const server = http.createServer((req, res) => {
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
