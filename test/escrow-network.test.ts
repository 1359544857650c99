/**
 * Escrow on real sockets: NetworkingKernels over bounded invariants on loopback, each with its
 * replication worker. Spends use the local share at once; requests and grants cross the links;
 * every node ends with the same ledger and state, and the cluster never sells more than the bound.
 * A durable node rebuilds its ledger from its WAL after a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AdmitError,
  BoundedCounterState,
  BoundedGCounterInvariant,
  ConservationState,
  DurableKernel,
  EscrowError,
  GCounterInvariant,
  InvalidArgumentError,
  Kernel,
  NetworkingKernel,
  Resource,
  TotalSupplyInvariant,
  i128le,
  toHex,
  u64le,
  type NetworkingOptions,
} from './helpers/lib.js';

const open: { close(): Promise<void> }[] = [];
const kernels: DurableKernel[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.close()));
  await Promise.all(kernels.splice(0).map((k) => k.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MEMBERS = ['a', 'b', 'c'];

async function start<K extends Kernel | DurableKernel>(kernel: K, nodeId: string, options: Partial<NetworkingOptions> = {}): Promise<NetworkingKernel<K>> {
  const n = await NetworkingKernel.start(kernel, { nodeId, plaintext: true, antiEntropyMs: 100, reconnectMinMs: 20, reconnectMaxMs: 200, escrow: { members: MEMBERS }, ...options });
  open.push(n);
  return n;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Three in-memory nodes over a bounded counter of capacity `limit`, in a full mesh. */
async function cluster(limit: bigint, escrow: Record<string, unknown> = {}): Promise<NetworkingKernel[]> {
  const state = new BoundedCounterState(0n, limit).toBytes();
  const a = await start(Kernel.withState(new BoundedGCounterInvariant(), state), 'a', { escrow: { members: MEMBERS, ...escrow } });
  const b = await start(Kernel.withState(new BoundedGCounterInvariant(), state), 'b', { peers: [a.address], escrow: { members: MEMBERS, ...escrow } });
  const c = await start(Kernel.withState(new BoundedGCounterInvariant(), state), 'c', { peers: [a.address, b.address], escrow: { members: MEMBERS, ...escrow } });
  const nodes = [a, b, c];
  await until('a full mesh', () => nodes.every((n) => n.peers().filter((p) => p.state === 'ready').length === 2));
  return nodes;
}

const value = (n: NetworkingKernel): bigint => BoundedCounterState.fromCell(n.kernel.state).value;
const converged = (nodes: NetworkingKernel[]): boolean => new Set(nodes.map((n) => toHex(n.digest()))).size === 1 && new Set(nodes.map((n) => toHex(n.escrow!.digest()))).size === 1;

describe('escrow across NetworkingKernels', () => {
  it('refuses a bounded kernel without escrow, escrow on a coordination-free one, and the plain admission family once escrowed', async () => {
    await expect(NetworkingKernel.start(new Kernel(new BoundedGCounterInvariant()), { nodeId: 'a', plaintext: true })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(NetworkingKernel.start(new Kernel(new GCounterInvariant()), { nodeId: 'a', plaintext: true, escrow: { members: ['a'] } })).rejects.toBeInstanceOf(InvalidArgumentError);
    const [a] = await cluster(300n);
    expect(a!.tryAdmitRaw(new Uint8Array(32), [], u64le(1))).toBe(AdmitCode.RequiresCoordination);
    expect(() => a!.admitRaw(new Uint8Array(32), [], u64le(1))).toThrow(AdmitError);
    expect(a!.escrow!.available()).toBe(100n);
  });

  it('spends the local share at once, moves quota on demand, and never sells more than the bound', async () => {
    const nodes = await cluster(300n, { lowWater: 10n, refill: 20n });
    const [a, b, c] = nodes as [NetworkingKernel, NetworkingKernel, NetworkingKernel];
    // a sells its whole share locally, with no network in the way.
    for (let i = 0; i < 100; i++) expect(a.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.Ok);
    expect(a.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.EscrowExhausted);
    expect(() => a.escrow!.admitSpend(u64le(1))).toThrow(EscrowError);
    // The low-water request went out in the background: a grant arrives as a fact.
    await until('a grant to a', () => a.escrow!.available() > 0n);
    expect(a.escrow!.stats().grantsReceived).toBeGreaterThanOrEqual(1);
    // Waiting for quota: admitSpendAsync asks and waits.
    const id = await a.escrow!.admitSpendAsync(u64le(25n), [], { timeoutMs: 10_000 });
    expect(id).toHaveLength(32);
    // A rush on every node: each tries to sell 200; the cluster sells at most 300 in all.
    const sold = [0n, 0n, 0n];
    await Promise.all(
      nodes.map(async (n, i) => {
        for (let k = 0; k < 200; k++) {
          try {
            await n.escrow!.admitSpendAsync(u64le(1), [], { timeoutMs: 1_500 });
            sold[i]! += 1n;
          } catch (error) {
            expect(error).toBeInstanceOf(EscrowError);
            expect((error as EscrowError).code).toBe('EscrowExhausted');
            break;
          }
        }
      }),
    );
    await until('the same facts and ledger everywhere', () => converged(nodes));
    const total = 100n + 25n + sold[0]! + sold[1]! + sold[2]!;
    expect(value(a)).toBe(total);
    expect(value(b)).toBe(total);
    expect(value(c)).toBe(total);
    expect(total).toBeLessThanOrEqual(300n);
    // Sold out or nearly: the quota moved to where the demand was.
    expect(total).toBeGreaterThanOrEqual(290n);
    const sums = a.escrow!.ledger.sums();
    expect(sums.quota[Resource.Up]).toBe(300n);
    expect(sums.used[Resource.Up]).toBe(total);
  }, 60_000);

  it('a total supply with a floor: decrements use the rights increments create, across nodes', async () => {
    const state = new ConservationState(90n, 0n, 1_000n).toBytes();
    const a = await start(Kernel.withState(new TotalSupplyInvariant(), state), 'a');
    const b = await start(Kernel.withState(new TotalSupplyInvariant(), state), 'b', { peers: [a.address] });
    const c = await start(Kernel.withState(new TotalSupplyInvariant(), state), 'c', { peers: [a.address] });
    const nodes = [a, b, c];
    await until('a full mesh', () => nodes.every((n) => n.peers().filter((p) => p.state === 'ready').length === 2));
    expect(a.escrow!.available(Resource.Down)).toBe(30n);
    expect(a.escrow!.tryAdmitSpend(i128le(-30n))).toBe(AdmitCode.Ok);
    expect(a.escrow!.tryAdmitSpend(i128le(-1n))).toBe(AdmitCode.EscrowExhausted);
    expect(a.escrow!.tryAdmitSpend(i128le(50n))).toBe(AdmitCode.Ok); // creates 50 down rights on a
    expect(a.escrow!.tryAdmitSpend(i128le(-50n))).toBe(AdmitCode.Ok);
    await a.escrow!.admitSpendAsync(i128le(-40n), [], { timeoutMs: 10_000 });
    await until('convergence', () => converged(nodes));
    for (const n of nodes) expect(ConservationState.fromCell(n.kernel.state).balance).toBe(90n - 30n + 50n - 50n - 40n);
  }, 60_000);

  it('a durable node rebuilds its ledger from its WAL and goes on with its chain after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-escrow-'));
    dirs.push(dir);
    const state = new BoundedCounterState(0n, 90n).toBytes();
    const openKernel = async (): Promise<DurableKernel> => {
      const k = await DurableKernel.open(dir, new BoundedGCounterInvariant(), { initialState: state });
      kernels.push(k);
      return k;
    };
    const peer = await start(Kernel.withState(new BoundedGCounterInvariant(), state), 'b');
    let k = await openKernel();
    let a = await start(k, 'a', { peers: [peer.address] });
    for (let i = 0; i < 20; i++) expect(a.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.Ok);
    await until('b has a’s spends', () => toHex(peer.digest()) === toHex(a.digest()));
    const before = toHex(a.escrow!.digest());
    await a.close();
    open.splice(open.indexOf(a), 1);
    await k.close();
    kernels.splice(kernels.indexOf(k), 1);
    k = await openKernel();
    a = await start(k, 'a', { peers: [peer.address] });
    expect(toHex(a.escrow!.digest())).toBe(before);
    expect(a.escrow!.available()).toBe(10n);
    for (let i = 0; i < 10; i++) expect(a.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.Ok);
    await until('b takes the chain’s continuation', () => toHex(peer.digest()) === toHex(a.digest()) && toHex(peer.escrow!.digest()) === toHex(a.escrow!.digest()));
    expect(peer.escrow!.stats().refused).toBe(0);
    // Other members than the WAL's genesis: a typed error, nothing started.
    await a.close();
    open.splice(open.indexOf(a), 1);
    await expect(NetworkingKernel.start(k, { nodeId: 'a', plaintext: true, escrow: { members: ['a', 'b'] } })).rejects.toMatchObject({ code: 'GenesisMismatch' });
  }, 60_000);

  it('reclaims a dead node’s share: the reclaim is a fact, every node moves the rights and closes the chain', async () => {
    const nodes = await cluster(300n);
    const [a, b, c] = nodes as [NetworkingKernel, NetworkingKernel, NetworkingKernel];
    for (let i = 0; i < 40; i++) expect(c.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.Ok);
    await until('c’s spends everywhere', () => converged(nodes));
    // c is gone for good (the operator stopped it and will never start it again under that id).
    await c.close();
    open.splice(open.indexOf(c), 1);
    const before = a.escrow!.available();
    const id = a.escrow!.reclaim('c');
    expect(id).toHaveLength(32);
    expect(a.escrow!.available()).toBe(before + 60n);
    await until('b has the reclaim', () => b.escrow!.ledger.holder('c')?.fenced === true);
    expect(b.escrow!.ledger.available('a', Resource.Up)).toBe(before + 60n);
    expect(toHex(b.escrow!.digest())).toBe(toHex(a.escrow!.digest()));
    // A second reclaim of the same node is refused (its chain is already closed).
    expect(() => a.escrow!.reclaim('c')).toThrow(AdmitError);
  }, 60_000);
});

