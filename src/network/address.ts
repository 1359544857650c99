/**
 * Addresses of replicating nodes: `host:port`, with an IPv6 host in brackets (`[::1]:7001`).
 * Checked where a user gives them, parsed where a socket needs them.
 */
import { describeValue } from '../describe-value.js';
import { InvalidArgumentError } from '../errors.js';

/** `address` if it is `host:port` with a port up to 65535; InvalidArgument naming `what` otherwise. */
export function checkAddress(address: unknown, what: string): string {
  if (typeof address !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(address) || Number(address.slice(address.lastIndexOf(':') + 1)) > 65535) {
    throw new InvalidArgumentError(`${what} must be "host:port", got ${describeValue(address)}`);
  }
  return address;
}

/** The host (brackets removed) and port of `host:port`; the port is NaN if there is none. */
export function parseAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}
