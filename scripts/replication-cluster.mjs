/**
 * Driving replication node processes (scripts/replication-node.mjs) from a parent: spawn, send a
 * command and await its answer, collect events, kill with a signal, restart. Used by the
 * replication benchmark and the process fault tests.
 */
import { spawn } from 'node:child_process';

const NODE_SCRIPT = new URL('./replication-node.mjs', import.meta.url);

export class NodeProcess {
  /** Events the node sent (`{ event: 'durable', through, ids }`, …), in order. */
  events = [];
  #child;
  #pending = new Map();
  #nextId = 1;
  #exited;

  /** @param netns a network namespace (by name) to run the node in, through `ip netns exec` (root only). */
  constructor(name, netns) {
    this.name = name;
    this.netns = netns;
  }

  /** Starts the node process and waits until it is ready for commands. */
  static async spawn(name, options = {}) {
    const p = new NodeProcess(name, options.netns);
    await p.#fork();
    return p;
  }

  #fork() {
    // The IPC channel is an inherited descriptor, so it survives the exec of `ip netns exec`.
    const node = [...process.execArgv, NODE_SCRIPT.pathname];
    const [command, args] = this.netns === undefined ? [process.execPath, node] : ['ip', ['netns', 'exec', this.netns, process.execPath, ...node]];
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.#exited.then(({ code, signal }) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`node ${this.name} exited (${signal ?? code}) before answering`));
      this.#pending.clear();
    });
    return new Promise((resolve, reject) => {
      child.on('message', (m) => {
        if (m.event === 'spawned') return resolve();
        if (m.event !== undefined) return void this.events.push(m);
        const waiter = this.#pending.get(m.id);
        if (waiter === undefined) return;
        this.#pending.delete(m.id);
        if (m.error !== undefined) waiter.reject(new Error(`node ${this.name}: ${m.error}`));
        else waiter.resolve(m);
      });
      child.once('error', reject);
      void this.#exited.then(() => reject(new Error(`node ${this.name} exited while starting`)));
    });
  }

  /** Sends `cmd` with `args` and resolves with the answer. */
  call(cmd, args = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.send({ ...args, cmd, id });
    });
  }

  get pid() {
    return this.#child.pid;
  }

  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT); for SIGKILL, resolves once the process is gone. */
  async signal(signal) {
    this.#child.kill(signal);
    if (signal === 'SIGKILL') await this.#exited;
  }

  /** A fresh process under the same name (after a kill): events are kept. */
  async respawn() {
    await this.#fork();
  }

  async close() {
    try {
      await this.call('close');
    } catch {
      // already gone
    }
    await this.#exited;
  }
}
