#!/usr/bin/env node
/**
 * The `ctfs` command: `cluster` (the demo: a local cluster under faults), `node` (run one
 * replicating node), `inspect <dir>` and `verify <dir>` (data directories). Argument parsing, help
 * and usage errors are commander's.
 */
import { Command, InvalidArgumentError as UsageError } from 'commander';
import { statSync } from 'node:fs';
import { formatDirectoryReport, inspectDirectory } from './inspect.js';
import { verifyDirectory } from './verify.js';
import { ConfigError, loadNodeConfig } from './node-config.js';
import { startNode } from './run-node.js';
import { runCluster } from './cluster.js';
import { CtfsError } from '../errors.js';

/** A directory argument that exists (commander reports the error with the usage). */
function directory(value: string): string {
  if (!statSync(value, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`${value} is not a directory`);
  return value;
}

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

interface NodeFlags {
  config?: string;
  nodeId?: string;
  dir?: string;
  listen?: string;
  advertise?: string;
  peer?: string[];
  cluster?: string;
  secretFile?: string;
  plaintext?: boolean;
  invariant?: string;
  capacity?: string;
  balance?: string;
  min?: string;
  max?: string;
  escrowMember?: string[];
  metrics?: string;
}

/** The flags as config fields (`loadNodeConfig` checks them, naming the field). */
function nodeOverrides(f: NodeFlags): Record<string, unknown> {
  const parameters = { capacity: f.capacity, balance: f.balance, min: f.min, max: f.max };
  const given = Object.values(parameters).some((v) => v !== undefined);
  if (given && f.invariant === undefined) throw new ConfigError('invariant.type', '--capacity, --balance, --min and --max need --invariant');
  return {
    nodeId: f.nodeId,
    dir: f.dir,
    listen: f.listen,
    advertise: f.advertise,
    peers: f.peer,
    cluster: f.cluster,
    secretFile: f.secretFile,
    plaintext: f.plaintext,
    invariant: f.invariant === undefined ? undefined : { type: f.invariant, ...Object.fromEntries(Object.entries(parameters).filter(([, v]) => v !== undefined)) },
    escrow: f.escrowMember === undefined ? undefined : { members: f.escrowMember },
    metrics: f.metrics,
  };
}

const program = new Command('ctfs').description('ctfs: a coordination-free state kernel — tools for its data directories').showHelpAfterError();

/** A positive integer option (commander reports a bad one with the usage). */
function positive(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${value} is not a positive integer`);
  return n;
}

program
  .command('cluster')
  .description('the demo: N local node processes under a mixed workload, one killed and one cut off mid-run, then a report; exit 1 if a check fails')
  .option('--nodes <n>', 'node processes', positive, 3)
  .option('--seconds <s>', 'seconds of workload', positive, 10)
  .option('--rate <facts/s>', 'facts per second per node (one in ten a sale)', positive, 2000)
  .option('--stock <n>', 'the stock the nodes sell from, split by escrow', positive, 3000)
  .option('--dir <dir>', 'where the nodes keep their data (default: a temporary directory, removed afterwards)')
  .option('--keep', 'keep the data directories')
  .option('--plain', 'plain progress lines even on a terminal')
  .action(async (options: { nodes: number; seconds: number; rate: number; stock: number; dir?: string; keep?: boolean; plain?: boolean }) => {
    const ok = await runCluster({ nodes: options.nodes, seconds: options.seconds, rate: options.rate, stock: options.stock, dir: options.dir, keep: options.keep === true, tty: process.stdout.isTTY === true && options.plain !== true });
    if (!ok) process.exitCode = 1;
  });

program
  .command('node')
  .description('run one durable replicating node until SIGINT/SIGTERM, from a JSON config, flags, or both (flags win); the secret: secretFile, or CTFS_CLUSTER_SECRET, never a flag')
  .option('--config <file>', 'the node\'s JSON config (nodeId, dir, listen, advertise, peers, cluster, invariant, escrow, metrics, secretFile, plaintext)')
  .option('--node-id <id>', 'nodeId: this node\'s name in the cluster')
  .option('--dir <dir>', 'dir: the data directory')
  .option('--listen <host:port>', 'listen (default 127.0.0.1:0)')
  .option('--advertise <host:port>', 'advertise: the address peers dial')
  .option('--peer <host:port>', 'a peer to dial (repeatable; replaces the config\'s peers)', collect)
  .option('--cluster <name>', 'cluster: the cluster\'s name')
  .option('--secret-file <file>', 'secretFile: a file holding the cluster secret')
  .option('--plaintext', 'plaintext links (tests and trusted networks only)')
  .option('--invariant <type>', 'invariant.type: gcounter, max, bounded-gcounter, total-supply')
  .option('--capacity <n>', 'invariant.capacity (bounded-gcounter)')
  .option('--balance <n>', 'invariant.balance (total-supply)')
  .option('--min <n>', 'invariant.min (total-supply)')
  .option('--max <n>', 'invariant.max (total-supply)')
  .option('--escrow-member <id>', 'escrow.members: a node that shares the bound (repeatable)', collect)
  .option('--metrics <host:port>', 'metrics: where to serve /metrics')
  .action(async (options: NodeFlags) => {
    let config;
    try {
      config = loadNodeConfig(options.config, nodeOverrides(options));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      console.error(error.message);
      process.exitCode = 2;
      return;
    }
    let node;
    try {
      node = await startNode(config);
    } catch (error) {
      console.error(error instanceof CtfsError ? `${error.code}: ${error.message}` : String(error));
      process.exitCode = 1;
      return;
    }
    const where = node.metrics === undefined ? '' : ` (metrics on http://${node.metrics.address.host}:${node.metrics.address.port}/metrics)`;
    console.log(`ctfs node ${config.nodeId} listening on ${node.net.address}${where}; data in ${config.dir}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        console.log(`${signal}: stopping (everything admitted is made durable first)`);
        resolve();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    await node.stop();
    console.log('stopped; the log is closed cleanly');
  });

program
  .command('inspect')
  .description('what a data directory holds: segments, checkpoints, manifest, records, last sequence (read-only)')
  .argument('<dir>', 'the data directory', directory)
  .option('--json', 'print the report as JSON')
  .action((dir: string, options: { json?: boolean }) => {
    try {
      const report = inspectDirectory(dir);
      console.log(options.json === true ? JSON.stringify(report, null, 2) : formatDirectoryReport(report));
    } catch (error) {
      if (!(error instanceof CtfsError)) throw error;
      console.error(`${error.code}: ${error.message}`);
      process.exitCode = 1;
    }
  });

program
  .command('verify')
  .description('every check recovery makes, read-only: exit 1 with the first fault if the directory would not open')
  .argument('<dir>', 'the data directory', directory)
  .action((dir: string) => {
    const outcome = verifyDirectory(dir);
    (outcome.ok ? console.log : console.error)(outcome.text);
    if (!outcome.ok) process.exitCode = 1;
  });

await program.parseAsync(process.argv);
