/**
 * How replication links are secured. Three modes, one chosen per node:
 * - **psk** (the default): TLS 1.3 with a pre-shared key derived from the cluster secret. No
 *   certificates; a peer without the secret fails the handshake (the PSK binder does not verify)
 *   and never sends or receives a frame.
 * - **mtls**: TLS 1.3 with certificates both ways, checked against the given CA.
 * - **plaintext**: TCP with no authentication at all, only when asked for by name.
 *
 * The key derivation, the cluster id and the sketch key all come from the secret and the cluster
 * name through BLAKE3's derive-key mode, each with its own context string, so none of them reveals
 * another (docs/FORMATS.md §9).
 */
import net from 'node:net';
import tls from 'node:tls';
import { createDeriveKey } from 'blake3-jit';
import { CLUSTER_ID_BYTES } from '../replication/frames.js';

export type LinkSecurity =
  | { readonly mode: 'psk'; readonly psk: Uint8Array }
  | { readonly mode: 'mtls'; readonly key: string | Uint8Array; readonly cert: string | Uint8Array; readonly ca: string | Uint8Array }
  | { readonly mode: 'plaintext' };

/** The TLS 1.3 suite the PSK is used with (its hash, SHA-256, must match the key's: OpenSSL checks). */
const PSK_CIPHER = 'TLS_AES_128_GCM_SHA256';
/** The PSK identity both ends name: one key per cluster, so the identity only says which protocol. */
const PSK_IDENTITY = 'ctfs-replication-v1';

function derive(context: string, material: Uint8Array, length: number): Uint8Array {
  return createDeriveKey(context).update(material).finalize(length);
}

/** The 32-byte TLS pre-shared key of a cluster secret. */
export function derivePsk(secret: Uint8Array): Uint8Array {
  return derive('ctfs 2026 replication link psk v1', secret, 32);
}

/** The cluster id Hello frames carry: from the cluster's name, so nodes of two clusters never mix. */
export function deriveClusterId(cluster: string): Uint8Array {
  return derive('ctfs 2026 replication cluster id v1', new TextEncoder().encode(cluster), CLUSTER_ID_BYTES);
}

/** The 8-byte key of the set sketch (the same on every node of a cluster). */
export function deriveSketchKey(clusterId: Uint8Array): Uint8Array {
  return derive('ctfs 2026 replication sketch key v1', clusterId, 8);
}

const bytesOf = (v: string | Uint8Array): string | Buffer => (typeof v === 'string' ? v : Buffer.from(v));

/** A listening server for `security`; `onLink` gets each authenticated connection. */
export function createLinkServer(security: LinkSecurity, onLink: (socket: net.Socket) => void, onHandshakeFailure: (error: Error) => void): net.Server {
  if (security.mode === 'plaintext') return net.createServer({ noDelay: true }, onLink);
  const common: tls.TlsOptions = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
  const options: tls.TlsOptions =
    security.mode === 'psk'
      ? { ...common, ciphers: PSK_CIPHER, pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? Buffer.from(security.psk) : null) }
      : { ...common, key: bytesOf(security.key), cert: bytesOf(security.cert), ca: bytesOf(security.ca), requestCert: true, rejectUnauthorized: true };
  const server = tls.createServer(options, (socket) => {
    socket.setNoDelay(true);
    onLink(socket);
  });
  server.on('tlsClientError', onHandshakeFailure);
  return server;
}

/**
 * Dials `host:port`; `onReady` once the link is authenticated (TLS handshake done), after which
 * the socket carries frames. Errors arrive as the socket's 'error' event.
 */
export function dialLink(security: LinkSecurity, host: string, port: number, onReady: () => void): net.Socket {
  if (security.mode === 'plaintext') {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('connect', onReady);
    return socket;
  }
  const common: tls.ConnectionOptions = { host, port, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
  const options: tls.ConnectionOptions =
    security.mode === 'psk'
      ? {
          ...common,
          ciphers: PSK_CIPHER,
          pskCallback: () => ({ psk: Buffer.from(security.psk), identity: PSK_IDENTITY }),
          // With a PSK there is no certificate to check: the key itself authenticates the server.
          checkServerIdentity: () => undefined,
        }
      : { ...common, key: bytesOf(security.key), cert: bytesOf(security.cert), ca: bytesOf(security.ca), rejectUnauthorized: true, checkServerIdentity: () => undefined };
  const socket = tls.connect(options);
  socket.setNoDelay(true);
  socket.once('secureConnect', onReady);
  return socket;
}
