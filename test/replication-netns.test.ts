/**
 * Replication under packet loss and a partition made by the kernel's own network stack: three
 * node processes in a network namespace this test creates (`ip netns`), talking over that
 * namespace's loopback, with nftables dropping 10% of TCP packets throughout and, for a while,
 * every packet to and from one node's port. Traffic never leaves the namespace. Needs root, `ip`
 * and `nft` (.ci/run installs nftables); skipped where the namespace cannot be made.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../scripts/replication-cluster.mjs';

const NS = `ctfs-test-${process.pid}`;
const SECRET = 'netns-test-cluster-secret';
const OPTIONS = { antiEntropyMs: 250, reconnectMinMs: 20, reconnectMaxMs: 250, probeMs: 200 };

function run(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return { ok: r.error === undefined && r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}` };
}
const nft = (rule: string): { ok: boolean; out: string } => run(['ip', 'netns', 'exec', NS, 'nft', ...rule.split(' ')]);

let why: string | undefined;

beforeAll(() => {
  if (process.getuid?.() !== 0) why = 'not root';
  else if (!run(['ip', 'netns', 'add', NS]).ok) why = 'cannot create a network namespace';
  else if (!run(['ip', '-n', NS, 'link', 'set', 'lo', 'up']).ok) why = 'cannot bring up the namespace loopback';
  else if (!nft('add table inet ctfs').ok) why = 'nft is missing or refused';
  else {
    nft('add chain inet ctfs input { type filter hook input priority 0 ; policy accept ; }');
    nft('add chain inet ctfs partition');
    nft('add rule inet ctfs input jump partition');
    // 10% of TCP packets, both ways (every packet on loopback is input once).
    const loss = nft('add rule inet ctfs input meta l4proto tcp numgen random mod 100 < 10 drop');
    if (!loss.ok) why = `nft refused the loss rule: ${loss.out}`;
  }
});

afterAll(() => {
  run(['ip', 'netns', 'del', NS]);
});

describe('replication in a network namespace', () => {
  it('converges through 10% packet loss and a partition of one node', async (ctx) => {
    if (why !== undefined) {
      if (process.env.CTFS_REQUIRE_NETNS === '1') throw new Error(`network namespace test cannot run: ${why}`);
      ctx.skip();
    }
    const nodes: NodeProcess[] = [];
    const addresses: string[] = [];
    try {
      for (const name of ['n0', 'n1', 'n2']) {
        const p = (await NodeProcess.spawn(name, { netns: NS })) as NodeProcess;
        nodes.push(p);
        const { address } = (await p.call('start', { nodeId: name, secret: SECRET, peers: addresses.slice(0, 1), options: OPTIONS })) as { address: string };
        addresses.push(address);
      }
      const writes = nodes.map((n) => n.call('admit', { count: 3000, rate: 2000, payloadBytes: 100 }));
      await new Promise((r) => setTimeout(r, 500));
      // Cut n2 off: every packet to or from its port is dropped, then the cut heals.
      const port = addresses[2]!.slice(addresses[2]!.lastIndexOf(':') + 1);
      expect(nft(`add rule inet ctfs partition tcp dport ${port} drop`).ok).toBe(true);
      expect(nft(`add rule inet ctfs partition tcp sport ${port} drop`).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      // The cut is real: n2 is missing what n0 and n1 exchanged meanwhile.
      const [cut0, cut2] = (await Promise.all([nodes[0]!.call('status'), nodes[2]!.call('status')])) as { size: number }[];
      expect(cut2!.size).toBeLessThan(cut0!.size);
      expect(nft('flush chain inet ctfs partition').ok).toBe(true);
      await Promise.all(writes);
      const deadline = Date.now() + 120_000;
      for (;;) {
        const statuses = (await Promise.all(nodes.map((n) => n.call('status', { digest: true })))) as { size: number; digest: string; stats: { rounds: number } }[];
        if (statuses.every((s) => s.size === 9000) && new Set(statuses.map((s) => s.digest)).size === 1) break;
        if (Date.now() > deadline) throw new Error(`no convergence: sizes ${statuses.map((s) => s.size).join(', ')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  }, 180_000);
});
