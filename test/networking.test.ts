/**
 * NetworkingKernel on real sockets (loopback): nodes in this process, each with its own
 * replication worker, linked by TLS 1.3 PSK (or plaintext where a test speaks raw frames itself),
 * some through the fault-injecting proxy. What must hold: every fact admitted anywhere ends up on
 * every node exactly once (equal set digests, equal sizes), joining through one seed is enough,
 * a node without the secret gets nothing in or out, hostile bytes close only their own connection
 * with a counted reason, and a durable node serves its history from its WAL after a restart.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  BoundedGCounterInvariant,
  DurableKernel,
  GCounterInvariant,
  InvalidArgumentError,
  Kernel,
  NetworkingKernel,
  ReplicationError,
  encodeFacts,
  encodeHello,
  factId,
  toHex,
  u64le,
  type NetworkingOptions,
} from './helpers/lib.js';
import { FaultProxy } from './harness/fault-proxy.js';

const SECRET = 'networking-test-cluster-secret';
const open: { close(): Promise<void> }[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function node(nodeId: string, options: Partial<NetworkingOptions> = {}, kernel: Kernel<GCounterInvariant> | DurableKernel<GCounterInvariant> = new Kernel(new GCounterInvariant())): Promise<NetworkingKernel> {
  const options_: NetworkingOptions = { nodeId, secret: SECRET, antiEntropyMs: 200, reconnectMinMs: 20, reconnectMaxMs: 200, ...options };
  const n = await NetworkingKernel.start(kernel, options_);
  open.push(n);
  return n;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ctfs-net-'));
  dirs.push(d);
  return d;
}

let counter = 0;
/** Admits `count` GCounter increments on `n`, each depending on the previous one of this batch. */
async function admitChain(n: NetworkingKernel, count: number): Promise<Uint8Array[]> {
  const ids: Uint8Array[] = [];
  let prev: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const payload = u64le(BigInt(1 + (counter++ % 7)) + (BigInt(counter) << 20n));
    const deps = prev === undefined ? [] : [prev];
    const id = factId(deps, payload);
    expect(n.tryAdmitRaw(id, deps, payload)).toBe(AdmitCode.Ok);
    ids.push(id);
    prev = id;
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  return ids;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function converged(nodes: readonly NetworkingKernel[], size: number): Promise<void> {
  await until(`${size} facts on every node (have ${nodes.map((n) => n.size).join(', ')})`, () => nodes.every((n) => n.size === size));
  const digests = new Set(nodes.map((n) => toHex(n.digest())));
  expect(digests.size).toBe(1);
  const states = new Set(nodes.map((n) => toHex(n.kernel.state.bytes)));
  expect(states.size).toBe(1);
}

describe('NetworkingKernel', () => {
  it('replicates every fact to every node, joining through one seed', async () => {
    const a = await node('a');
    const b = await node('b', { peers: [a.address] });
    const c = await node('c', { peers: [a.address] });
    await admitChain(a, 2000);
    await admitChain(b, 1500);
    await admitChain(c, 1000);
    await converged([a, b, c], 4500);
    // b and c knew only a: they learnt each other from a's member list and linked directly.
    await until('b linked to c', () => b.peers().some((p) => p.nodeId === 'c' && p.state === 'ready'));
    expect(c.peers().some((p) => p.nodeId === 'b' && p.state === 'ready')).toBe(true);
    // The worker counts an admission when it reads the kernel's answer, a moment after the kernel has it.
    await until('a counted every fact', () => a.stats().factsAdmitted === 2500 && a.stats().logFacts === 4500);
    const s = a.stats();
    expect(s.factsRefused).toBe(0);
    expect(Object.values(s.rejected).reduce((x, y) => x + y, 0) - s.rejected.Duplicate).toBe(0);
  });

  it('heals a partition and a reset through the proxy', async () => {
    // Each node is reached only through its own proxy (it advertises the proxy's address), so
    // faults on the proxies cut every path between them.
    const toA = await FaultProxy.start({ target: '127.0.0.1:1' });
    const toB = await FaultProxy.start({ target: '127.0.0.1:1' });
    const proxies = [toA, toB];
    const each = (f: (p: FaultProxy) => void): void => proxies.forEach(f);
    try {
      const a = await node('a', { advertise: toA.address });
      toA.setTarget(a.address);
      const b = await node('b', { advertise: toB.address, peers: [toA.address] });
      toB.setTarget(b.address);
      await admitChain(a, 300);
      await converged([a, b], 300);
      each((p) => p.blackhole(true));
      await admitChain(a, 400);
      await admitChain(b, 400);
      await new Promise((r) => setTimeout(r, 300));
      expect(b.size).toBeLessThan(1100);
      each((p) => p.reset());
      each((p) => p.heal());
      await converged([a, b], 1100);
      // Slices and latency: frames cut anywhere still arrive whole.
      each((p) => p.slice(7));
      each((p) => p.latency(5, 5));
      await admitChain(b, 300);
      await converged([a, b], 1400);
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });

  it('never lets a node without the secret in or out', async () => {
    const a = await node('a');
    const intruder = await node('x', { secret: 'some-other-secret-of-16-bytes', peers: [a.address] });
    await admitChain(a, 50);
    await admitChain(intruder, 50);
    await until('a refused a handshake', () => a.stats().rejected.Handshake > 0);
    await new Promise((r) => setTimeout(r, 300));
    expect(a.size).toBe(50);
    expect(intruder.size).toBe(50);
    expect(a.stats().factsAdmitted).toBe(0);
    expect(intruder.peers().every((p) => p.state !== 'ready')).toBe(true);
  });

  it('links with mutual TLS: nodes with certificates of the cluster CA replicate, others are refused', async (ctx) => {
    const dir = tempDir();
    // A CA and certificates made here with openssl (CI installs it; elsewhere the test is skipped without it).
    const openssl = (args: string[]): void => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      if (r.error !== undefined || r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
    };
    if (spawnSync('openssl', ['version']).error !== undefined) {
      if (process.env.CI) throw new Error('openssl is needed for this test in CI');
      ctx.skip();
    }
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    for (const ca of ['ca', 'other-ca']) openssl(['req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`]);
    for (const [name, ca] of [['a', 'ca'], ['b', 'ca'], ['x', 'other-ca']]) {
      openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2']);
    }
    const tls = (name: string, ca = 'ca') => ({ key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.pem`)), ca: readFileSync(join(dir, `${ca}.pem`)) });
    const a = await node('a', { secret: undefined, tls: tls('a') });
    const b = await node('b', { secret: undefined, tls: tls('b'), peers: [a.address] });
    const x = await node('x', { secret: undefined, tls: tls('x', 'other-ca'), peers: [a.address] });
    await admitChain(a, 100);
    await admitChain(b, 100);
    await admitChain(x, 10);
    await converged([a, b], 200);
    await until('a refused x', () => a.stats().rejected.Handshake > 0);
    expect(x.size).toBe(10);
    // The worker counts an admission when it reads the kernel's answer, a moment after the kernel has it.
    await until('a counted b facts', () => a.stats().factsAdmitted === 100);
  });

  it('closes a connection that sends hostile bytes, with a counted reason, and nothing else', async () => {
    const a = await node('a', { secret: undefined, plaintext: true });
    const b = await node('b', { secret: undefined, plaintext: true, peers: [a.address] });
    const [host, port] = [a.address.slice(0, a.address.lastIndexOf(':')), Number(a.address.slice(a.address.lastIndexOf(':') + 1))];
    const send = (bytes: Uint8Array): Promise<void> =>
      new Promise((resolve) => {
        const s = net.connect({ host, port }, () => s.write(bytes));
        s.resume(); // read (and drop) a's Hello, so its closing the link is seen
        s.on('error', () => undefined);
        s.on('close', () => resolve());
        setTimeout(() => s.destroy(), 3000).unref();
      });
    // A length word past the 1 MiB frame limit.
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 0x7fffffff, true);
    await send(huge);
    // A length word below the 8-byte header.
    await send(new Uint8Array([3, 0, 0, 0, 1, 1, 0, 0]));
    // A frame of an unknown type.
    await send(new Uint8Array([8, 0, 0, 0, 0xee, 1, 0, 0]));
    // A Hello of another cluster.
    await send(encodeHello({ clusterId: new Uint8Array(16).fill(9), nodeId: 'evil', incarnation: 1 }));
    const rejected = a.stats().rejected;
    expect(rejected.FrameTooLarge).toBe(1);
    expect(rejected.FrameTooSmall).toBe(1);
    expect(rejected.MalformedFrame).toBe(1);
    expect(rejected.OtherCluster).toBe(1);
    // The legitimate peer was not disturbed.
    await admitChain(b, 100);
    await converged([a, b], 100);
    await until('a reports b ready', () => a.peers().some((p) => p.nodeId === 'b' && p.state === 'ready'));
  });

  it('drops a forged fact and closes the link that sent it', async () => {
    const a = await node('a', { secret: undefined, plaintext: true });
    const [host, port] = [a.address.slice(0, a.address.lastIndexOf(':')), Number(a.address.slice(a.address.lastIndexOf(':') + 1))];
    // Learn a's cluster id from its own Hello, then speak as a member and push a forged fact.
    const closed = new Promise<void>((resolve) => {
      const s = net.connect({ host, port });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
      s.once('data', (chunk: Buffer) => {
        const clusterId = chunk.subarray(8, 24);
        s.write(encodeHello({ clusterId, nodeId: 'forger', incarnation: 1 }));
        const payload = u64le(5n);
        const forged = { id: factId([], u64le(6n)), deps: [], payload };
        setTimeout(() => s.write(encodeFacts([forged])), 50);
      });
    });
    await closed;
    expect(a.stats().rejected.ForgedFact).toBe(1);
    expect(a.size).toBe(0);
  });

  it('sends a durable node fact only once it is fsynced', async () => {
    // Every fsync takes 300 ms more: long enough to look at the peer while the fact is not durable.
    const kernel = await DurableKernel.open(tempDir(), new GCounterInvariant(), { faults: { syncDelayMs: 300 } } as Parameters<typeof DurableKernel.open>[2]);
    const a = await node('a', {}, kernel);
    const b = await node('b', { peers: [a.address] });
    await until('b linked', () => b.peers().some((p) => p.state === 'ready'));
    const [id] = await admitChain(a, 1);
    const sequence = kernel.lastSequence;
    let sawNotDurable = false;
    while (b.size === 0) {
      // Read b first: if b has the fact now, a's fsync must already have covered it.
      const bHas = b.size > 0;
      const durable = kernel.durableSequence >= sequence;
      if (!durable) sawNotDurable = true;
      expect(bHas && !durable).toBe(false);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(kernel.durableSequence).toBeGreaterThanOrEqual(sequence);
    expect(sawNotDurable).toBe(true);
    expect(b.kernel.contains(id!)).toBe(true);
    await a.close();
    await kernel.close();
  });

  it('serves a durable node history from its WAL after a restart', async () => {
    const dir = tempDir();
    let kernel = await DurableKernel.open(dir, new GCounterInvariant());
    let a = await node('a', {}, kernel);
    const b = await node('b', { peers: [a.address] });
    await admitChain(a, 500);
    await converged([a, b], 500);
    expect(a.stats().awaitingDurable).toBe(0);
    await a.close();
    await kernel.close();
    // Restart a from its directory; a new node c that never saw a joins and gets everything.
    kernel = await DurableKernel.open(dir, new GCounterInvariant());
    a = await node('a', {}, kernel);
    expect(a.stats().logFacts).toBe(500);
    const c = await node('c', { peers: [a.address] });
    await admitChain(c, 10);
    await converged([a, c], 510);
    await a.close();
    await kernel.close();
  });

  it('refuses bad options with typed errors', async () => {
    const k = (): Kernel<GCounterInvariant> => new Kernel(new GCounterInvariant());
    await expect(NetworkingKernel.start(k(), { nodeId: 'a' } as NetworkingOptions)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(k(), { nodeId: 'a', secret: 'short' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(k(), { nodeId: 'a', secret: SECRET, plaintext: true })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(k(), { nodeId: '', secret: SECRET })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(k(), { nodeId: 'a', secret: SECRET, listen: 'localhost' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(k(), { nodeId: 'a', secret: SECRET, peers: ['x:99999'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(new Kernel(new BoundedGCounterInvariant()), { nodeId: 'a', secret: SECRET })).rejects.toBeInstanceOf(InvalidArgumentError);
    const used = k();
    const p = u64le(1n);
    used.admitRaw(factId([], p), [], p);
    await expect(NetworkingKernel.start(used, { nodeId: 'a', secret: SECRET })).rejects.toBeInstanceOf(InvalidArgumentError);
    const a = await node('a');
    const taken = NetworkingKernel.start(k(), { nodeId: 'b', secret: SECRET, listen: a.address });
    await expect(taken).rejects.toBeInstanceOf(ReplicationError);
    await expect(taken).rejects.toMatchObject({ code: 'ReplicationStartFailed' });
    await a.close();
    expect(() => a.addPeer('127.0.0.1:1')).toThrow(expect.objectContaining({ code: 'ReplicationClosed' }));
  });
});
