/**
 * Replication between real processes under faults: three durable nodes (scripts/replication-node.mjs,
 * each a child process with its own data directory and replication worker) admit facts with
 * durable acknowledgements while one is killed with SIGKILL mid-write and restarted from its
 * directory, and another is frozen with SIGSTOP and thawed. Afterwards every fact any node
 * acknowledged as durable is on every node, and the nodes hold the same set (equal set digests;
 * the kernels' exact dedup makes "the same set" mean "each fact exactly once").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeProcess } from '../scripts/replication-cluster.mjs';

const SECRET = 'process-test-cluster-secret';
const OPTIONS = { antiEntropyMs: 250, reconnectMinMs: 20, reconnectMaxMs: 250, probeMs: 200 };
const running: NodeProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.signal('SIGKILL').catch(() => undefined)));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface DurableEvent {
  readonly event: string;
  readonly ids?: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startNode(p: NodeProcess, name: string, dir: string, peers: string[], resumeAt = 0): Promise<string> {
  const { address } = (await p.call('start', { nodeId: name, secret: SECRET, dir, peers, options: OPTIONS, resumeAt })) as { address: string };
  return address;
}

describe('replication between processes', () => {
  it('keeps every durable fact through SIGKILL, restart and SIGSTOP', async () => {
    const names = ['n0', 'n1', 'n2'];
    const nodeDirs = names.map(() => mkdtempSync(join(tmpdir(), 'ctfs-repl-proc-')));
    dirs.push(...nodeDirs);
    const nodes: NodeProcess[] = [];
    const addresses: string[] = [];
    for (const [i, name] of names.entries()) {
      const p = (await NodeProcess.spawn(name)) as NodeProcess;
      running.push(p);
      nodes.push(p);
      addresses.push(await startNode(p, name, nodeDirs[i]!, i === 0 ? [] : [addresses[0]!]));
    }
    const [, n1, n2] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // Paced writers on every node, acknowledged durable as they go.
    const writes = nodes.map((n) => n.call('admit', { count: 4000, rate: 4000, ack: 'durable', payloadBytes: 120 }).catch((e: Error) => e));
    await sleep(400);
    await n1.signal('SIGKILL'); // mid-write: some of its facts were never fsynced
    await n2.signal('SIGSTOP');
    await sleep(700);
    await n2.signal('SIGCONT');
    // n1 comes back from its directory and writes on (new sequence numbers: new facts).
    await n1.respawn();
    addresses[1] = await startNode(n1, 'n1', nodeDirs[1]!, [addresses[0]!], 1_000_000);
    const after = n1.call('admit', { count: 1000, rate: 4000, ack: 'durable', payloadBytes: 120 });
    const results = await Promise.all([...writes, after]);
    expect(results[1]).toBeInstanceOf(Error); // the killed writer's answer never came
    for (const r of [results[0], results[2], results[3]]) expect(r).not.toBeInstanceOf(Error);

    const acked = nodes.flatMap((n) => (n.events as DurableEvent[]).filter((e) => e.event === 'durable').flatMap((e) => e.ids ?? []));
    expect(acked.length).toBeGreaterThan(8000);
    // Converged: equal sizes and equal set digests on all three.
    const deadline = Date.now() + 90_000;
    let statuses: { size: number; digest: string }[] = [];
    for (;;) {
      statuses = (await Promise.all(nodes.map((n) => n.call('status', { digest: true })))) as { size: number; digest: string }[];
      if (new Set(statuses.map((s) => s.digest)).size === 1) break;
      if (Date.now() > deadline) throw new Error(`no convergence: sizes ${statuses.map((s) => s.size).join(', ')}`);
      await sleep(200);
    }
    for (const n of nodes) {
      const { missing } = (await n.call('missing', { ids: acked })) as { missing: string[] };
      expect(missing).toEqual([]);
    }
    // Nothing beyond what was written: at most every fact each writer produced.
    expect(statuses[0]!.size).toBeGreaterThanOrEqual(new Set(acked).size);
    expect(statuses[0]!.size).toBeLessThanOrEqual(3 * 4000 + 1000);
    await Promise.all(nodes.map((n) => n.close()));
    running.length = 0;
  }, 180_000);
});
