/**
 * Escrow hints through the replica core, frame by frame: QuotaRequest and QuotaDenial reach the
 * other core's host as 'quota' events naming the sender, a hint to a node without a ready link is
 * refused (it is safe to lose), and when two nodes have dialled each other and one of the two
 * links closes, the other still carries hints (and everything else addressed to that node).
 */
import { describe, expect, it } from 'vitest';
import { ReplicaCore, type ReplicaAction } from './helpers/lib.js';

const CLUSTER = new Uint8Array(16).fill(4);
const KEY = new Uint8Array(8).fill(6);

function core(name: string): ReplicaCore {
  return new ReplicaCore({ nodeId: name, clusterId: CLUSTER, incarnation: 1, sketchKey: KEY }, { get: () => undefined, logFrom: () => [] });
}

/**
 * Delivers frames until quiet. `wires` maps (core, link name) → (other core, its name for the
 * link back): a link is a pair of names, one on each side.
 */
function exchange(wires: [ReplicaCore, string, ReplicaCore, string][]): ReplicaAction[] {
  const other: ReplicaAction[] = [];
  for (let round = 0; round < 1000; round++) {
    let moved = false;
    for (const c of new Set(wires.flatMap(([a, , b]) => [a, b]))) {
      for (const action of c.drain()) {
        if (action.kind !== 'send') {
          other.push(action);
          continue;
        }
        const wire = wires.find(([from, name]) => from === c && name === action.peer);
        if (wire === undefined) continue;
        moved = true;
        wire[2].receive(wire[3], action.frame, 0);
      }
    }
    if (!moved) return other;
  }
  throw new Error('the cores never went quiet');
}

const quotaEvents = (actions: ReplicaAction[]) => actions.flatMap((a) => (a.kind === 'event' && a.event.type === 'quota' ? [a.event] : []));

describe('escrow hints in the replica core', () => {
  it('a request and a denial arrive as quota events naming the sender; no link, no hint', () => {
    const a = core('a');
    const b = core('b');
    const wires: [ReplicaCore, string, ReplicaCore, string][] = [
      [a, 'to-b', b, 'from-a'],
      [b, 'from-a', a, 'to-b'],
    ];
    expect(a.sendQuota('b', true, new Uint8Array(16), 1, 5n)).toBe(false); // not greeted yet
    a.linkUp('to-b', 0);
    b.linkUp('from-a', 0);
    exchange(wires);
    expect(a.readyNodes()).toEqual(['b']);
    const id = new Uint8Array(16).fill(9);
    expect(a.sendQuota('b', true, id, 1, 5n)).toBe(true);
    expect(quotaEvents(exchange(wires))).toEqual([{ type: 'quota', peer: 'from-a', nodeId: 'a', request: true, requestId: id, resource: 1, amount: 5n }]);
    expect(b.sendQuota('a', false, id, 1, 0n)).toBe(true);
    expect(quotaEvents(exchange(wires))).toMatchObject([{ nodeId: 'b', request: false, amount: 0n }]);
    expect(a.sendQuota('c', true, id, 1, 5n)).toBe(false);
  });

  it('two links to one node, the newer closed: the older still carries hints', () => {
    const a = core('a');
    const b = core('b');
    const wires: [ReplicaCore, string, ReplicaCore, string][] = [
      [a, 'out', b, 'in'],
      [b, 'in', a, 'out'],
      [a, 'in', b, 'out'],
      [b, 'out', a, 'in'],
    ];
    a.linkUp('out', 0);
    b.linkUp('in', 0);
    exchange(wires);
    // b dials a too (it learnt a's address): a second link, greeted after the first.
    b.linkUp('out', 0);
    a.linkUp('in', 0);
    exchange(wires);
    // The host keeps the link dialled by the smaller id (a's 'out') and closes the other.
    a.linkDown('in');
    b.linkDown('out');
    expect(a.readyNodes()).toEqual(['b']);
    expect(b.readyNodes()).toEqual(['a']);
    expect(a.sendQuota('b', true, new Uint8Array(16), 0, 1n)).toBe(true);
    expect(quotaEvents(exchange(wires.slice(0, 2)))).toMatchObject([{ nodeId: 'a', peer: 'in' }]);
  });
});
