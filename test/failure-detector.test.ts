/**
 * The failure detector alone, driven by a scripted host: SWIM's precedence of statuses, probes
 * that go indirect, suspicion that becomes failure after Lifeguard's timeout (shorter with more
 * independent confirmations), refutation, and local health.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FailureDetector, overrides, type DetectorHost, type MemberStatus } from './helpers/lib.js';

const status = (nodeId: string, over: Partial<MemberStatus> = {}): MemberStatus => ({ nodeId, address: '', incarnation: 1, refutations: 0, state: 'alive', reporter: '', ...over });

/** A host that records what the detector sent and reports every peer in `links` as linked. */
function scriptedHost(links: string[]): DetectorHost & { sent: string[]; gossiped: MemberStatus[]; changes: string[] } {
  const sent: string[] = [];
  const gossiped: MemberStatus[] = [];
  const changes: string[] = [];
  return {
    sent,
    gossiped,
    changes,
    linked: (p) => links.includes(p),
    linkedPeers: () => links,
    ping: (p, n) => sent.push(`ping ${p} ${n}`),
    pong: (p, n) => sent.push(`pong ${p} ${n}`),
    pingReq: (p, n, t) => sent.push(`pingReq ${p} ${n} ${t}`),
    nack: (p, n) => sent.push(`nack ${p} ${n}`),
    gossip: (s) => gossiped.push(...s),
    changed: (s, prev) => changes.push(`${s.nodeId} ${prev?.state ?? 'new'}→${s.state}`),
  };
}

const options = { probeMs: 100, probeTimeoutMs: 50, indirectProbes: 2, suspicionMult: 4, suspicionMaxMult: 6 };

describe('failure detector', () => {
  it('orders statuses the SWIM way', () => {
    const a = (state: MemberStatus['state'], refutations: number, incarnation = 1): MemberStatus => status('x', { state, refutations, incarnation });
    expect(overrides(a('suspect', 0), a('alive', 0))).toBe(true);
    expect(overrides(a('alive', 0), a('suspect', 0))).toBe(false); // a suspicion needs a refutation
    expect(overrides(a('alive', 1), a('suspect', 0))).toBe(true);
    expect(overrides(a('failed', 0), a('suspect', 0))).toBe(true);
    expect(overrides(a('suspect', 0), a('failed', 0))).toBe(false);
    expect(overrides(a('alive', 1), a('failed', 0))).toBe(true); // the member itself refuted
    expect(overrides(a('alive', 0, 2), a('failed', 5, 1))).toBe(true); // a restart beats anything of the old run
    expect(overrides(a('failed', 9, 1), a('alive', 0, 2))).toBe(false);
    // Antisymmetric: two statuses never override each other, so gossip settles whatever the order.
    const any = fc.record({ state: fc.constantFrom('alive' as const, 'suspect' as const, 'failed' as const), refutations: fc.nat(3), incarnation: fc.integer({ min: 1, max: 3 }) });
    fc.assert(fc.property(any, any, (x, y) => !(overrides(status('x', x), status('x', y)) && overrides(status('x', y), status('x', x)))));
  });

  it('probes directly, then through others, then suspects, then fails the member after the suspicion timeout', () => {
    const host = scriptedHost(['b', 'c', 'd']);
    const fd = new FailureDetector(status('a'), host, options);
    for (const p of ['b', 'c', 'd']) fd.learn(status(p), 0);
    fd.tick(0);
    const [, target, nonce] = host.sent[0]!.split(' ');
    expect(host.sent[0]).toMatch(/^ping [bcd] 1$/);
    host.sent.length = 0;
    fd.tick(50); // probe timeout: two helpers are asked
    expect(host.sent).toHaveLength(2);
    expect(host.sent.every((s) => s.startsWith('pingReq') && s.endsWith(` ${nonce} ${target}`) && !s.includes(`pingReq ${target}`))).toBe(true);
    fd.onNack(Number(nonce));
    fd.onNack(Number(nonce));
    fd.tick(100); // the period ends without a Pong
    expect(fd.status(target!)?.state).toBe('suspect');
    expect(fd.healthScore).toBe(0); // both helpers answered: the fault is not ours
    // n = 4 members: the shortest suspicion is 4 · max(1, log10 4) · 100 = 400 ms, the longest 2,400 ms.
    for (let t = 110; t < 100 + 2_400; t += 10) fd.tick(t);
    expect(fd.status(target!)?.state).toBe('suspect');
    fd.tick(100 + 2_400);
    expect(fd.status(target!)?.state).toBe('failed');
    expect(host.changes).toContain(`${target} alive→suspect`);
    expect(host.changes).toContain(`${target} suspect→failed`);
  });

  it('independent confirmations shorten the suspicion to its minimum', () => {
    const host = scriptedHost(['b', 'c', 'd', 'e']);
    const fd = new FailureDetector(status('a'), host, options);
    for (const p of ['b', 'c', 'd', 'e']) fd.learn(status(p), 0);
    fd.learn(status('e', { state: 'suspect', reporter: 'b' }), 0);
    for (const r of ['c', 'd', 'a2']) fd.learn(status('e', { state: 'suspect', reporter: r }), 0);
    fd.learn(status('e', { state: 'suspect', reporter: 'c' }), 0); // the same reporter twice counts once
    for (let t = 0; t < 400; t += 10) fd.tick(t);
    expect(fd.status('e')?.state).toBe('suspect');
    fd.tick(400);
    expect(fd.status('e')?.state).toBe('failed');
  });

  it('refutes a suspicion of itself, and the refutation overrides the suspicion elsewhere', () => {
    const host = scriptedHost(['b']);
    const fd = new FailureDetector(status('a'), host, options);
    fd.learn(status('a', { state: 'suspect', reporter: 'b' }), 0);
    expect(fd.selfStatus).toMatchObject({ state: 'alive', refutations: 1 });
    expect(host.gossiped.at(-1)).toMatchObject({ nodeId: 'a', state: 'alive', refutations: 1 });
    expect(fd.healthScore).toBe(1); // being suspected suggests this node is slow

    const other = new FailureDetector(status('b'), scriptedHost(['a']), options);
    other.learn(status('a'), 0);
    other.learn(status('a', { state: 'failed', reporter: 'c' }), 0);
    expect(other.status('a')?.state).toBe('failed');
    other.learn(host.gossiped.at(-1)!, 10);
    expect(other.status('a')).toMatchObject({ state: 'alive', refutations: 1 });
  });

  it('a probe whose helpers stay silent raises local health, which stretches the next periods; Pongs bring it back', () => {
    const host = scriptedHost(['b', 'c', 'd']);
    const fd = new FailureDetector(status('a'), host, options);
    for (const p of ['b', 'c', 'd']) fd.learn(status(p), 0);
    fd.tick(0);
    fd.tick(50);
    fd.tick(100); // no Pong, no Nack; the next probe starts
    expect(fd.healthScore).toBe(1);
    const nonce = Number(host.sent.at(-1)!.split(' ')[2]);
    expect(host.sent.at(-1)).toMatch(/^ping /);
    host.sent.length = 0;
    fd.tick(150);
    expect(host.sent.filter((s) => s.startsWith('pingReq'))).toHaveLength(0); // the timeout is now 2 × 50 ms
    fd.tick(200);
    expect(host.sent.filter((s) => s.startsWith('pingReq')).length).toBeGreaterThan(0);
    fd.onPong(nonce); // late, through a helper: still an answer
    expect(fd.healthScore).toBe(0);
  });

  it('serves indirect probes: forwards the Pong, or Nacks when the target stays silent or has no link', () => {
    const host = scriptedHost(['b', 'c']);
    const fd = new FailureDetector(status('a'), host, options);
    fd.onPingReq('b', 77, 'c', 0);
    const mine = Number(host.sent[0]!.split(' ')[2]);
    expect(host.sent[0]).toBe(`ping c ${mine}`);
    fd.onPong(mine);
    expect(host.sent[1]).toBe('pong b 77');
    fd.onPingReq('b', 78, 'c', 0);
    fd.tick(50);
    expect(host.sent.at(-1)).toBe('nack b 78');
    fd.onPingReq('b', 79, 'zz', 60);
    expect(host.sent.at(-1)).toBe('nack b 79');
    fd.onPingReq('b', 80, 'a', 60);
    expect(host.sent.at(-1)).toBe('pong b 80'); // we are the target
  });
});
