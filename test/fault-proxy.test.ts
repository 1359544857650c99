/**
 * The fault-injecting proxy of test/harness/fault-proxy.ts, proved against real TCP servers on
 * loopback: bytes pass intact and in order whatever the faults, and each fault does what it says.
 * Timings are only ever checked from below (a fault delayed at least this much): the machine is
 * shared and slow at times, so nothing here can fail for being late.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from './harness/fault-proxy.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/**
 * What a flooding client offers: over twice what loopback's kernel buffers can take on two hops
 * (tcp_rmem may let each receive buffer grow to 32 MiB), so only backpressure keeps the proxy from
 * reading it all. The client writes one block over and over, so this costs it no memory.
 */
const FLOOD_BYTES = 256 * MiB;
/** Slack for the clock: a timer and performance.now() may disagree by a ms or so. */
const CLOCK_SLACK_MS = 5;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition`; a condition that never comes true fails the test by its timeout. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5);
}

/** One end of a TCP connection, recording what arrives on it and when. */
class End {
  readonly chunks: Buffer[] = [];
  readonly arrivals: number[] = [];
  readonly errors: Error[] = [];
  size = 0;
  isClosed = false;
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.arrivals.push(performance.now());
      this.size += chunk.length;
    });
    socket.on('error', (err) => this.errors.push(err));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Everything received, once at least `n` bytes have arrived. */
  async received(n: number): Promise<Buffer> {
    await until(() => this.size >= n);
    return this.data;
  }
}

interface TestServer {
  readonly address: string;
  /** Every connection accepted, in order. */
  readonly ends: End[];
  close(): Promise<void>;
}

/** A server on 127.0.0.1:0; `onConnection` decides what it does (echo, speak first, not read...). */
async function startServer(onConnection: (end: End) => void = () => {}): Promise<TestServer> {
  const ends: End[] = [];
  const server = net.createServer((socket) => {
    const end = new End(socket);
    ends.push(end);
    onConnection(end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      for (const end of ends) end.socket.destroy();
      server.close(() => resolve());
    }));
  cleanups.push(close);
  return { address: `127.0.0.1:${port}`, ends, close };
}

const echo = (end: End): void => {
  end.socket.on('data', (chunk: Buffer) => end.socket.write(chunk));
};

async function startProxy(target: string): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ target });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A client connection to `address` (not waited for: writes before the connect are queued). */
function connect(address: string): End {
  const [host, port] = address.split(':') as [string, string];
  const end = new End(net.connect({ host, port: Number(port) }));
  cleanups.push(() => end.socket.destroy());
  return end;
}

/** Sends `message` and waits for it to come back from an echo server. */
async function roundTrip(client: End, message: string): Promise<void> {
  const before = client.size;
  client.socket.write(message);
  const data = await client.received(before + message.length);
  expect(data.subarray(before).toString()).toBe(message);
}

/**
 * Writes `block` again and again, as fast as `socket` takes it, up to `total` bytes. `absorbed`
 * is what has left the client's own buffer: what the kernel and whatever reads the socket (here
 * the proxy) have taken.
 */
function flood(socket: net.Socket, block: Buffer, total: number): { absorbed: () => number } {
  let written = 0;
  const push = (): void => {
    while (written < total) {
      written += block.length;
      if (!socket.write(block)) return;
    }
  };
  socket.on('drain', push);
  push();
  return { absorbed: () => written - socket.writableLength };
}

/** Waits until `value` has not changed for `quietMs`: the flow it measures has stalled. */
async function stalled(value: () => number, quietMs = 300): Promise<number> {
  let last = value();
  let since = performance.now();
  while (performance.now() - since < quietMs) {
    await sleep(20);
    const now = value();
    if (now !== last) {
      last = now;
      since = performance.now();
    }
  }
  return last;
}

/** A port nothing listens on: one the kernel just handed out and that was closed again. */
async function closedPort(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

const count = (kind: string): number => process.getActiveResourcesInfo().filter((r) => r === kind).length;

describe('FaultProxy', () => {
  it('passes bytes through unchanged and counts them', async () => {
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    expect(proxy.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const client = connect(proxy.address);
    const payload = randomBytes(100 * KiB);
    client.socket.write(payload);
    expect((await client.received(payload.length)).equals(payload)).toBe(true);
    expect(proxy.stats()).toEqual({ connections: 1, open: 1, bytesUp: payload.length, bytesDown: payload.length, dropped: 0 });

    client.socket.end();
    await client.closed;
    await until(() => proxy.stats().open === 0);
    await target.ends[0]!.closed;
    expect(proxy.stats().connections).toBe(1);
  });

  it('keeps 1 MiB intact and in order through random slicing and jittered latency, changed while in flight', async () => {
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    proxy.slice(1000).latency(5, 5);
    // Faults change under bytes already held: the order must survive that too.
    const churn = setInterval(() => {
      proxy.slice(64 + Math.floor(Math.random() * 4000), Math.random() < 0.2 ? 1 : 0);
      proxy.latency(Math.random() * 10, Math.random() * 10, Math.random() < 0.5 ? 'up' : 'down');
    }, 5);
    cleanups.push(() => clearInterval(churn));

    const client = connect(proxy.address);
    const payload = randomBytes(MiB);
    // Written in random sizes, so chunk boundaries on the way in vary too.
    for (let at = 0; at < payload.length; ) {
      const n = 1 + Math.floor(Math.random() * 64 * KiB);
      client.socket.write(payload.subarray(at, at + n));
      at += n;
    }
    const back = await client.received(payload.length);
    clearInterval(churn);
    expect(back.length).toBe(payload.length);
    expect(back.equals(payload)).toBe(true);
    expect(target.ends[0]!.data.equals(payload)).toBe(true);
    expect(proxy.stats()).toMatchObject({ bytesUp: MiB, bytesDown: MiB, dropped: 0 });
  });

  it('writes slices separately, delayMs apart', async () => {
    const target = await startServer();
    const proxy = await startProxy(target.address);
    const [pieceBytes, delayMs] = [100, 150];
    proxy.slice(pieceBytes, delayMs, 'up');
    const client = connect(proxy.address);
    const payload = randomBytes(3 * pieceBytes);
    const start = performance.now();
    client.socket.write(payload);
    await until(() => target.ends[0] !== undefined);
    const sink = target.ends[0]!;
    expect((await sink.received(payload.length)).equals(payload)).toBe(true);
    // Three pieces: the second and third each wait delayMs after the one before.
    expect(performance.now() - start).toBeGreaterThanOrEqual(2 * delayMs - CLOCK_SLACK_MS);
    // Whole, the write would arrive as one chunk; the first piece arrives alone, long before the next.
    expect(sink.chunks[0]!.length).toBeLessThanOrEqual(pieceBytes);
  });

  it('delays delivery by at least the latency, each way or one way', async () => {
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    const client = connect(proxy.address);
    await roundTrip(client, 'warm up');
    const server = target.ends[0]!;
    const ms = 80;

    proxy.latency(ms);
    let start = performance.now();
    await roundTrip(client, 'both ways');
    expect(server.arrivals.at(-1)! - start).toBeGreaterThanOrEqual(ms - CLOCK_SLACK_MS);
    expect(client.arrivals.at(-1)! - start).toBeGreaterThanOrEqual(2 * ms - CLOCK_SLACK_MS);

    proxy.latency(0).latency(ms, 0, 'down');
    start = performance.now();
    await roundTrip(client, 'down only');
    expect(client.arrivals.at(-1)! - start).toBeGreaterThanOrEqual(ms - CLOCK_SLACK_MS);

    proxy.latency(0, 0, 'down').latency(ms, 20, 'up');
    start = performance.now();
    await roundTrip(client, 'up, with jitter');
    expect(server.arrivals.at(-1)! - start).toBeGreaterThanOrEqual(ms - 20 - CLOCK_SLACK_MS);
  });

  it('applies a change of latency to bytes already held: heal() releases them', async () => {
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    const client = connect(proxy.address);
    await roundTrip(client, 'warm up');
    // Longer than the test's timeout: only heal() can let this through in time.
    proxy.latency(10 * 60_000);
    client.socket.write('held');
    await sleep(50);
    expect(client.size).toBe('warm up'.length);
    proxy.heal();
    expect((await client.received('warm upheld'.length)).toString()).toBe('warm upheld');
  });

  it('caps bandwidth: 200 KiB at 1 MiB/s takes at least 150 ms', async () => {
    const target = await startServer();
    const proxy = await startProxy(target.address);
    proxy.bandwidth(MiB);
    const client = connect(proxy.address);
    const payload = randomBytes(200 * KiB);
    const start = performance.now();
    client.socket.write(payload);
    await until(() => target.ends[0] !== undefined);
    const sink = target.ends[0]!;
    expect((await sink.received(payload.length)).equals(payload)).toBe(true);
    // 195 ms at the cap, less the bucket's initial burst (20 ms worth).
    expect(performance.now() - start).toBeGreaterThanOrEqual(150);

    proxy.bandwidth(null);
    client.socket.write(payload);
    expect((await sink.received(2 * payload.length)).subarray(payload.length).equals(payload)).toBe(true);
  });

  it('blackhole swallows bytes with the connection open; after heal() later bytes flow again', async () => {
    const target = await startServer();
    const proxy = await startProxy(target.address);
    const client = connect(proxy.address);
    client.socket.write('a');
    await until(() => target.ends[0]?.size === 1);
    const server = target.ends[0]!;

    proxy.blackhole(true);
    client.socket.write(Buffer.alloc(1000, 'b'));
    await until(() => proxy.stats().dropped === 1000);
    server.socket.write('x');
    await until(() => proxy.stats().dropped === 1001);
    await sleep(50);
    expect(server.data.toString()).toBe('a');
    expect(client.size).toBe(0);

    proxy.heal();
    client.socket.write('c');
    server.socket.write('y');
    expect((await server.received(2)).toString()).toBe('ac');
    expect((await client.received(1)).toString()).toBe('y');

    // One way only: the other keeps flowing.
    proxy.blackhole(true, 'up');
    client.socket.write('d');
    await until(() => proxy.stats().dropped === 1002);
    server.socket.write('z');
    expect((await client.received(2)).toString()).toBe('yz');
    expect(server.data.toString()).toBe('ac');

    // The same connection throughout, never closed.
    expect(target.ends).toHaveLength(1);
    expect([client.isClosed, server.isClosed]).toEqual([false, false]);
    expect(proxy.stats()).toMatchObject({ connections: 1, open: 1, bytesUp: 2, bytesDown: 2, dropped: 1002 });
  });

  it('blackhole swallows bytes already held by latency too', async () => {
    const target = await startServer();
    const proxy = await startProxy(target.address);
    const client = connect(proxy.address);
    client.socket.write('a');
    await until(() => target.ends[0]?.size === 1);
    const server = target.ends[0]!;

    proxy.latency(10 * 60_000, 0, 'up');
    client.socket.write('held');
    await sleep(50);
    proxy.blackhole(true);
    // Held or still on its way in, 'held' must be swallowed, not delivered after heal().
    await until(() => proxy.stats().dropped === 'held'.length);
    proxy.heal();
    client.socket.write('b');
    expect((await server.received(2)).toString()).toBe('ab');
  });

  it('reset() closes both sides of every connection; new connections still work', async () => {
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    const clients = [connect(proxy.address), connect(proxy.address)];
    for (const c of clients) await roundTrip(c, 'hi');

    proxy.reset();
    await Promise.all([...clients.map((c) => c.closed), ...target.ends.map((e) => e.closed)]);
    await until(() => proxy.stats().open === 0);

    await roundTrip(connect(proxy.address), 'again');
    expect(target.ends).toHaveLength(3);
  });

  it('refuse(true) resets new connections before they reach the target; existing ones keep working', async () => {
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    const before = connect(proxy.address);
    await roundTrip(before, 'one');

    proxy.refuse(true);
    const refused = connect(proxy.address);
    refused.socket.write('never');
    await refused.closed;
    expect(refused.size).toBe(0);
    await roundTrip(before, 'two');
    expect(target.ends).toHaveLength(1);
    expect(target.ends[0]!.data.toString()).toBe('onetwo');

    proxy.refuse(false);
    await roundTrip(connect(proxy.address), 'three');
    expect(target.ends).toHaveLength(2);
    expect(proxy.stats()).toMatchObject({ connections: 3, open: 2 });
  });

  it('setTarget() sends new connections to the new target and leaves existing ones', async () => {
    const greet = (name: string) => (end: End) => void end.socket.write(name);
    const a = await startServer(greet('A'));
    const b = await startServer(greet('B'));
    const proxy = await startProxy(a.address);
    const first = connect(proxy.address);
    expect((await first.received(1)).toString()).toBe('A');

    proxy.setTarget(b.address);
    const second = connect(proxy.address);
    expect((await second.received(1)).toString()).toBe('B');

    first.socket.write('still A');
    expect((await a.ends[0]!.received(7)).toString()).toBe('still A');
    expect([a.ends.length, b.ends.length]).toEqual([1, 1]);

    expect(() => proxy.setTarget('10.0.0.1:80')).toThrow(/loopback/);
    await expect(FaultProxy.start({ target: '8.8.8.8:53' })).rejects.toThrow(/loopback/);
  });

  it('closes a pair quietly when the target refuses or resets', async () => {
    const proxy = await startProxy(await closedPort());
    const refused = connect(proxy.address);
    await refused.closed;
    await until(() => proxy.stats().open === 0);

    const target = await startServer((end) => void end.socket.resetAndDestroy());
    proxy.setTarget(target.address);
    const reset = connect(proxy.address);
    reset.socket.write('hello');
    await reset.closed;
    await until(() => proxy.stats().open === 0);
    expect(proxy.stats().connections).toBe(2);
  });

  it('stops reading from the client while the target does not read (backpressure)', async () => {
    const target = await startServer((end) => void end.socket.pause());
    const proxy = await startProxy(target.address);
    const client = connect(proxy.address);
    const total = FLOOD_BYTES;
    const { absorbed } = flood(client.socket, randomBytes(MiB), total);
    const taken = await stalled(absorbed);
    // The kernel's buffers on both hops take some (about 10 MiB here); without backpressure the
    // proxy would read it all into memory.
    expect(taken).toBeLessThan(total / 2);
    expect(proxy.stats().bytesUp).toBeLessThan(total / 2);
  });

  it('stops reading from the client while latency holds a lot, and delivers it all when healed', async () => {
    let verified = 0;
    let mismatch = false;
    const block = randomBytes(MiB);
    // Compared on arrival rather than stored: FLOOD_BYTES go by.
    const target = await startServer((end) =>
      end.socket.on('data', (chunk: Buffer) => {
        for (let i = 0; i < chunk.length; ) {
          const at = (verified + i) % block.length;
          const n = Math.min(chunk.length - i, block.length - at);
          if (!chunk.subarray(i, i + n).equals(block.subarray(at, at + n))) mismatch = true;
          i += n;
        }
        verified += chunk.length;
        // Recording End keeps what it gets; this one must not.
        end.chunks.length = 0;
      }),
    );
    const proxy = await startProxy(target.address);
    proxy.latency(10 * 60_000);
    const client = connect(proxy.address);
    const total = FLOOD_BYTES;
    const { absorbed } = flood(client.socket, block, total);
    const taken = await stalled(absorbed);
    expect(taken).toBeLessThan(total / 2);
    expect(proxy.stats().bytesUp).toBe(0);

    proxy.heal();
    await until(() => verified === total);
    expect(mismatch).toBe(false);
    expect(proxy.stats()).toMatchObject({ bytesUp: total, dropped: 0 });
  });

  it('close() resolves with connections open and bytes held, and leaves no socket, server or timer behind', async () => {
    const before = { sockets: count('TCPSocketWrap'), servers: count('TCPServerWrap'), timers: count('Timeout') };
    const target = await startServer(echo);
    const proxy = await startProxy(target.address);
    const clients = [connect(proxy.address), connect(proxy.address), connect(proxy.address)];
    for (const c of clients) await roundTrip(c, 'hi');
    proxy.latency(60_000).bandwidth(1);
    for (const c of clients) c.socket.write('held by a timer');
    await sleep(50);

    await proxy.close();
    await Promise.all([...clients.map((c) => c.closed), ...target.ends.map((e) => e.closed)]);
    expect(proxy.stats()).toMatchObject({ open: 0, bytesDown: 6 });

    const late = connect(proxy.address);
    await late.closed;
    expect(late.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNREFUSED']);

    await target.close();
    expect(count('TCPSocketWrap')).toBeLessThanOrEqual(before.sockets);
    expect(count('TCPServerWrap')).toBeLessThanOrEqual(before.servers);
    expect(count('Timeout')).toBeLessThanOrEqual(before.timers);
  });
});
