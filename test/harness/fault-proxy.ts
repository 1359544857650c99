/**
 * A TCP proxy for tests that run real nodes on loopback: it sits on one link and makes it slow,
 * narrow, choppy, silent, reset or refusing, at any moment and per direction, so the replication
 * layer meets the network it will meet in production without leaving the machine.
 *
 * Bytes it delivers arrive exactly once and in order, as TCP promises, however the faults change
 * while they are held; only the faults that are about loss (blackhole, reset, refuse) lose any.
 */
import net from 'node:net';

/** Which way a fault applies: `up` is client → target, `down` is target → client. */
export type Direction = 'both' | 'up' | 'down';
type Way = 'up' | 'down';

export interface FaultProxyStats {
  /** Client connections accepted, refused ones included. */
  readonly connections: number;
  /** Connections of which at least one side is still open (refused ones never count). */
  readonly open: number;
  /** Bytes handed on to the target. */
  readonly bytesUp: number;
  /** Bytes handed on to the client. */
  readonly bytesDown: number;
  /** Bytes read but never handed on: swallowed by a blackhole, or held when their connection closed. */
  readonly dropped: number;
}

/** The faults of one direction; the proxy mutates this object in place and every pipe reads it live. */
interface WayFaults {
  latencyMs: number;
  jitterMs: number;
  bytesPerSecond: number | null;
  slice: { readonly maxBytes: number; readonly delayMs: number } | null;
  blackhole: boolean;
}

interface Endpoint {
  readonly host: string;
  readonly port: number;
}

type Count = (delivered: number, dropped: number) => void;

/**
 * Bytes one direction of one connection may hold (delayed by latency, bandwidth or slicing) before
 * its reader is paused. Bounds memory while still covering a bandwidth-delay product of 100 MiB/s
 * at 10 ms, far beyond what tests on loopback ask for.
 */
const MAX_HELD_BYTES = 1024 * 1024;

/**
 * A bandwidth bucket holds this many ms worth of bytes: enough that a timer firing late on a busy
 * machine does not cost throughput, too little for a burst to beat the cap noticeably.
 */
const BURST_MS = 20;

const DEFAULT_LISTEN = '127.0.0.1:0';

const noFaults = (): WayFaults => ({ latencyMs: 0, jitterMs: 0, bytesPerSecond: null, slice: null, blackhole: false });

const ignore = (): void => {};

function ways(direction: Direction): Way[] {
  if (direction === 'both') return ['up', 'down'];
  if (direction === 'up' || direction === 'down') return [direction];
  throw new RangeError(`direction must be 'both', 'up' or 'down', not ${String(direction)}`);
}

function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1';
  return host === 'localhost';
}

/** 'host:port' or '[v6]:port', loopback only: a test harness has no business touching a real network. */
function parseEndpoint(text: string, what: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !(port <= 65535)) throw new TypeError(`${what} must be 'host:port', not '${text}'`);
  if (!isLoopback(host)) throw new RangeError(`${what} '${text}' is not a loopback address`);
  return { host, port };
}

const formatEndpoint = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

function nonNegative(value: number, what: string): number {
  if (!(value >= 0 && Number.isFinite(value))) throw new RangeError(`${what} must be a finite number >= 0, not ${value}`);
  return value;
}

/** Ends `socket` at once; a reset (RST), where possible, so the peer sees what a dead link or process shows it. */
function abort(socket: net.Socket): void {
  if (socket.destroyed) return;
  // A socket still connecting has nothing to reset, and resetAndDestroy would wait for the connect.
  if (typeof socket.resetAndDestroy === 'function' && !socket.connecting) {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not a TCP handle after all: destroying is the next best thing.
    }
  }
  socket.destroy();
}

/** A chunk read and not yet handed on, with what decides when it is due. */
interface Held {
  data: Buffer;
  readonly arrivedAt: number;
  /** In [-1, 1): scales the jitter in force when the chunk comes due, so a change of latency applies to held bytes too. */
  readonly jitter: number;
}

/**
 * One direction of one connection. Everything held waits in one FIFO and only its head can be
 * written: a later chunk whose jitter came out shorter waits behind an earlier one, which is how
 * order survives jitter (head-of-line blocking, as in TCP itself).
 */
class Pipe {
  private readonly held: Held[] = [];
  private heldBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private awaitingDrain = false;
  private paused = false;
  private ended = false;
  private stopped = false;
  /** Starts full (clamped to the bucket's size on first use), like a link that has been idle. */
  private tokens = Infinity;
  private refilledAt = performance.now();
  private lastWriteAt = -Infinity;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly faults: WayFaults,
    private readonly count: Count,
  ) {
    from.on('data', (chunk: Buffer) => this.receive(chunk));
    from.on('end', () => {
      this.ended = true;
      this.pump();
    });
    to.on('drain', () => {
      this.awaitingDrain = false;
      this.pump();
    });
  }

  /** Delivers what is due under the faults in force now, and schedules the rest. */
  pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    if (this.faults.blackhole) {
      this.discard();
    } else {
      this.deliver();
      // The FIN follows the last byte; a blackhole holds it back rather than lose it, so a healed
      // link still ends the stream.
      if (this.held.length === 0 && this.ended && !this.to.writableEnded) this.to.end();
    }
    this.regulate();
  }

  /** No more delivery: the far side is gone or the connection is closing. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.discard();
  }

  private receive(chunk: Buffer): void {
    if (this.stopped || this.faults.blackhole) {
      this.count(0, chunk.length);
      return;
    }
    this.held.push({ data: chunk, arrivedAt: performance.now(), jitter: Math.random() * 2 - 1 });
    this.heldBytes += chunk.length;
    this.pump();
  }

  private deliver(): void {
    const f = this.faults;
    while (this.held.length > 0 && !this.awaitingDrain) {
      if (this.to.destroyed || this.to.writableEnded) return this.discard();
      const head = this.held[0]!;
      const now = performance.now();
      const dueAt = head.arrivedAt + Math.max(0, f.latencyMs + head.jitter * f.jitterMs);
      const wait = Math.max(dueAt - now, f.slice === null ? 0 : this.lastWriteAt + f.slice.delayMs - now);
      if (wait > 0) return this.wake(wait);

      let n = head.data.length;
      if (f.slice !== null) n = Math.min(n, f.slice.maxBytes);
      if (f.bytesPerSecond !== null) {
        const rate = f.bytesPerSecond;
        // At least one byte, or a tiny rate could never send anything.
        const capacity = Math.max(1, (rate * BURST_MS) / 1000);
        this.tokens = Math.min(capacity, this.tokens + ((now - this.refilledAt) * rate) / 1000);
        this.refilledAt = now;
        // Waiting for a bucketful (not a single byte) keeps writes few at high rates.
        const want = Math.min(n, capacity);
        if (this.tokens < want) return this.wake(((want - this.tokens) / rate) * 1000);
        n = Math.min(n, Math.floor(this.tokens));
        this.tokens -= n;
      }

      const piece = n === head.data.length ? head.data : head.data.subarray(0, n);
      if (piece === head.data) this.held.shift();
      else head.data = head.data.subarray(n);
      this.heldBytes -= n;
      this.lastWriteAt = now;
      this.count(n, 0);
      if (!this.to.write(piece)) this.awaitingDrain = true;
    }
  }

  private wake(ms: number): void {
    // Timers may fire a little early; pump checks the clock again and re-arms if so.
    this.timer = setTimeout(() => this.pump(), Math.ceil(ms));
  }

  /** Backpressure: stop reading while the far socket is full or too much is held here. */
  private regulate(): void {
    // A blackhole must keep reading: bytes left in the kernel would flow after heal().
    const hold = !this.stopped && !this.faults.blackhole && (this.awaitingDrain || this.heldBytes >= MAX_HELD_BYTES);
    if (hold === this.paused) return;
    this.paused = hold;
    if (hold) this.from.pause();
    else this.from.resume();
  }

  private discard(): void {
    if (this.heldBytes > 0) this.count(0, this.heldBytes);
    this.held.length = 0;
    this.heldBytes = 0;
  }
}

/** A client socket, the socket the proxy opened to the target for it, and a pipe each way. */
class Connection {
  readonly closed: Promise<void>;
  private readonly client: net.Socket;
  private readonly remote: net.Socket;
  private readonly pipes: readonly Pipe[];

  constructor(client: net.Socket, target: Endpoint, faults: Readonly<Record<Way, WayFaults>>, count: (way: Way) => Count) {
    this.client = client;
    this.remote = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const up = new Pipe(client, this.remote, faults.up, count('up'));
    const down = new Pipe(this.remote, client, faults.down, count('down'));
    this.pipes = [up, down];
    let open = 2;
    this.closed = new Promise((resolve) => {
      for (const [socket, inbound] of [[client, down], [this.remote, up]] as const) {
        // Small writes leave at once: slicing means separate segments, and Nagle would add delays
        // no fault asked for.
        socket.setNoDelay(true);
        // Errors (ECONNRESET, EPIPE, ECONNREFUSED) are the network being a network: 'close' follows
        // and tears the pair down.
        socket.on('error', ignore);
        socket.once('close', (hadError) => {
          inbound.stop();
          // An abrupt end stays abrupt on the other side; an orderly one has already been passed on
          // as a FIN by the pipe, after the bytes still held.
          if (hadError) this.reset();
          if (--open > 0) return;
          for (const p of this.pipes) p.stop();
          resolve();
        });
      }
    });
  }

  pump(): void {
    for (const p of this.pipes) p.pump();
  }

  reset(): void {
    abort(this.client);
    abort(this.remote);
  }

  destroy(): void {
    for (const p of this.pipes) p.stop();
    this.client.destroy();
    this.remote.destroy();
  }
}

export interface FaultProxyOptions {
  /** 'host:port' of the server behind the proxy (loopback). */
  readonly target: string;
  /** 'host:port' to listen on (loopback); by default 127.0.0.1 and a free port. */
  readonly listen?: string;
}

/**
 * Listens on loopback and forwards each connection to the target through the faults set on it.
 * Faults can change at any moment; they apply to bytes already held as well as to new ones.
 */
export class FaultProxy {
  private readonly faults: Record<Way, WayFaults> = { up: noFaults(), down: noFaults() };
  private readonly live = new Set<Connection>();
  private refusing = false;
  private accepted = 0;
  private readonly bytes: Record<Way, number> = { up: 0, down: 0 };
  private dropped = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: net.Server,
    private target: Endpoint,
    /** Where the proxy listens, 'host:port'. */
    readonly address: string,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const target = parseEndpoint(options.target, 'target');
    const listen = parseEndpoint(options.listen ?? DEFAULT_LISTEN, 'listen');
    // Half-open connections stay half-open: a client's FIN must not end the replies still coming.
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Accept failures (e.g. EMFILE) must not crash the test process; the client simply sees its
    // connection fail.
    server.on('error', ignore);
    const bound = server.address() as net.AddressInfo;
    // Connections cannot arrive before the constructor runs: no I/O callback runs between here and there.
    return new FaultProxy(server, target, formatEndpoint(bound.address, bound.port));
  }

  /** New connections go to `target`; existing ones stay where they are. */
  setTarget(target: string): this {
    this.target = parseEndpoint(target, 'target');
    return this;
  }

  /** Each chunk is held `ms ± jitterMs` (uniform) before it is delivered; order is kept. */
  latency(ms: number, jitterMs = 0, direction: Direction = 'both'): this {
    return this.set(direction, { latencyMs: nonNegative(ms, 'latency'), jitterMs: nonNegative(jitterMs, 'jitter') });
  }

  /** Caps each connection, each way, at `bytesPerSecond`; null lifts the cap. */
  bandwidth(bytesPerSecond: number | null, direction: Direction = 'both'): this {
    if (bytesPerSecond !== null && !(bytesPerSecond > 0 && Number.isFinite(bytesPerSecond))) {
      throw new RangeError(`bandwidth must be a finite number > 0 or null, not ${bytesPerSecond}`);
    }
    return this.set(direction, { bytesPerSecond });
  }

  /** Writes at most `maxBytes` at a time, `delayMs` apart; null writes chunks whole again. */
  slice(maxBytes: number | null, delayMs = 0, direction: Direction = 'both'): this {
    if (maxBytes !== null && !(Number.isInteger(maxBytes) && maxBytes >= 1)) {
      throw new RangeError(`slice size must be an integer >= 1 or null, not ${maxBytes}`);
    }
    return this.set(direction, { slice: maxBytes === null ? null : { maxBytes, delayMs: nonNegative(delayMs, 'slice delay') } });
  }

  /** While on, bytes read are swallowed (held ones too) and connections stay open. */
  blackhole(on: boolean, direction: Direction = 'both'): this {
    return this.set(direction, { blackhole: on });
  }

  /** While on, new connections are accepted and reset at once. */
  refuse(on: boolean): this {
    this.refusing = on;
    return this;
  }

  /** Resets every current connection, on both sides. */
  reset(): this {
    for (const c of this.live) c.reset();
    return this;
  }

  /** Lifts every fault; held bytes are then delivered as soon as their order allows. */
  heal(): this {
    this.refusing = false;
    return this.set('both', noFaults());
  }

  stats(): FaultProxyStats {
    return { connections: this.accepted, open: this.live.size, bytesUp: this.bytes.up, bytesDown: this.bytes.down, dropped: this.dropped };
  }

  /** Stops listening and closes every connection; resolves when all sockets are closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // server.close calls back once every accepted socket has closed, refused ones included.
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      const connections = [...this.live];
      for (const c of connections) c.destroy();
      await Promise.all([stopped, ...connections.map((c) => c.closed)]);
    })();
    return this.closing;
  }

  private set(direction: Direction, change: Partial<WayFaults>): this {
    for (const way of ways(direction)) Object.assign(this.faults[way], change);
    for (const c of this.live) c.pump();
    return this;
  }

  private accept(socket: net.Socket): void {
    this.accepted++;
    socket.on('error', ignore);
    if (this.refusing || this.closing !== undefined) return abort(socket);
    const connection = new Connection(socket, this.target, this.faults, (way) => (delivered, dropped) => {
      this.bytes[way] += delivered;
      this.dropped += dropped;
    });
    this.live.add(connection);
    void connection.closed.then(() => this.live.delete(connection));
  }
}
