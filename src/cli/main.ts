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
  .description('run one durable replicating node until SIGINT/SIGTERM (the secret: secretFile in the config, or CTFS_CLUSTER_SECRET)')
  .requiredOption('--config <file>', 'the node\'s JSON config (nodeId, dir, listen, peers, invariant, escrow, metrics, secretFile, …)')
  .option('--node-id <id>', 'overrides nodeId')
  .option('--dir <dir>', 'overrides dir')
  .option('--listen <host:port>', 'overrides listen')
  .option('--peer <host:port>', 'a peer to dial (repeatable; replaces the config\'s peers)', (value: string, previous: string[] | undefined) => [...(previous ?? []), value])
  .option('--metrics <host:port>', 'overrides metrics: where to serve /metrics')
  .action(async (options: { config: string; nodeId?: string; dir?: string; listen?: string; peer?: string[]; metrics?: string }) => {
    let config;
    try {
      config = loadNodeConfig(options.config, { nodeId: options.nodeId, dir: options.dir, listen: options.listen, metrics: options.metrics, peers: options.peer });
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
