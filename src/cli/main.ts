#!/usr/bin/env node
/**
 * The `ctfs` command. Subcommands so far: `inspect <dir>` and `verify <dir>` (data directories).
 * Argument parsing, help and usage errors are commander's.
 */
import { Command, InvalidArgumentError as UsageError } from 'commander';
import { statSync } from 'node:fs';
import { formatDirectoryReport, inspectDirectory } from './inspect.js';
import { verifyDirectory } from './verify.js';
import { CtfsError } from '../errors.js';

/** A directory argument that exists (commander reports the error with the usage). */
function directory(value: string): string {
  if (!statSync(value, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`${value} is not a directory`);
  return value;
}

const program = new Command('ctfs').description('ctfs: a coordination-free state kernel — tools for its data directories').showHelpAfterError();

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
