/**
 * The configuration of `ctfs node`: a JSON file, every field checked, a bad one named. The
 * cluster secret never comes from the command line: from `secretFile`, else the environment
 * variable CTFS_CLUSTER_SECRET (or `plaintext: true`, for tests and trusted networks only).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BoundedCounterState, BoundedGCounterInvariant } from '../invariants/bounded-gcounter.js';
import { GCounterInvariant } from '../invariants/gcounter.js';
import { MaxInvariant } from '../invariants/max.js';
import { ConservationState, TotalSupplyInvariant } from '../invariants/total-supply.js';
import type { Invariant } from '../invariants/invariant.js';

export class ConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`config: ${field}: ${message}`);
  }
}

export interface NodeConfig {
  readonly nodeId: string;
  /** The data directory (a DurableKernel's). */
  readonly dir: string;
  readonly listen: string;
  readonly advertise: string | undefined;
  readonly peers: string[];
  readonly cluster: string | undefined;
  readonly secret: string | undefined;
  readonly plaintext: boolean;
  readonly invariant: () => Invariant;
  /** The state a new log starts from (undefined: the invariant's own). */
  readonly initialState: Uint8Array | undefined;
  readonly escrow: { members: string[] } | undefined;
  /** Where to serve /metrics (undefined: not served). */
  readonly metrics: string | undefined;
}

const INVARIANTS = ['gcounter', 'max', 'bounded-gcounter', 'total-supply'] as const;
/** What each invariant is configured with, beside its type. */
const INVARIANT_PARAMETERS: Record<(typeof INVARIANTS)[number], readonly string[]> = {
  gcounter: [],
  max: [],
  'bounded-gcounter': ['capacity'],
  'total-supply': ['balance', 'min', 'max'],
};
const SECRET_ENV = 'CTFS_CLUSTER_SECRET';

function str(o: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = o[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function big(o: Record<string, unknown>, field: string, fallback: bigint): bigint {
  const v = o[field];
  if (v === undefined) return fallback;
  if ((typeof v !== 'string' && typeof v !== 'number') || !/^-?\d+$/.test(String(v))) throw new ConfigError(field, `must be an integer (a number or a decimal string), got ${JSON.stringify(v)}`);
  return BigInt(v);
}

/**
 * Fields given by flags: each replaces the file's field of the same name (`invariant` and
 * `escrow` whole). Checked exactly as the file's fields are.
 */
export type ConfigOverrides = Partial<Record<string, unknown>>;

/**
 * Reads and checks a config file (or none: the flags alone, paths relative to the working
 * directory); `overrides` (from flags) win over the file.
 */
export function loadNodeConfig(file: string | undefined, overrides: ConfigOverrides = {}, env = process.env): NodeConfig {
  let raw: unknown = {};
  if (file !== undefined) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError('(file)', `cannot read ${file} as JSON: ${(error as Error).message}`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('(file)', 'must hold a JSON object');
  const o = { ...(raw as Record<string, unknown>), ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  const known = new Set(['nodeId', 'dir', 'listen', 'advertise', 'peers', 'cluster', 'secretFile', 'plaintext', 'invariant', 'escrow', 'metrics']);
  for (const key of Object.keys(o)) if (!known.has(key)) throw new ConfigError(key, `is not a field (fields: ${[...known].join(', ')})`);
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  const nodeId = str(o, 'nodeId', true)!;
  const dir = resolve(base, str(o, 'dir', true)!);
  const listen = str(o, 'listen', false) ?? '127.0.0.1:0';
  const peers = o['peers'] ?? [];
  if (!Array.isArray(peers) || peers.some((p) => typeof p !== 'string' || p.length === 0)) throw new ConfigError('peers', 'must be an array of "host:port" strings');
  const plaintext = o['plaintext'] ?? false;
  if (typeof plaintext !== 'boolean') throw new ConfigError('plaintext', 'must be true or false');
  let secret: string | undefined;
  const secretFile = str(o, 'secretFile', false);
  if (secretFile !== undefined) {
    try {
      secret = readFileSync(resolve(base, secretFile), 'utf8').trim();
    } catch (error) {
      throw new ConfigError('secretFile', `cannot read ${secretFile}: ${(error as Error).message}`);
    }
  } else secret = env[SECRET_ENV];
  if (!plaintext && (secret === undefined || secret.length < 16)) throw new ConfigError('secretFile', `no cluster secret of at least 16 characters: give secretFile, or set ${SECRET_ENV} (never on the command line)`);
  const inv = o['invariant'] ?? { type: 'gcounter' };
  if (inv === null || typeof inv !== 'object') throw new ConfigError('invariant', `must be an object with a type (${INVARIANTS.join(', ')})`);
  const i = inv as Record<string, unknown>;
  const parameters = INVARIANT_PARAMETERS[i['type'] as (typeof INVARIANTS)[number]] ?? [];
  for (const key of (INVARIANTS as readonly unknown[]).includes(i['type']) ? Object.keys(i) : []) {
    if (key !== 'type' && !parameters.includes(key)) throw new ConfigError(`invariant.${key}`, `is not a parameter of ${String(i['type'])} (its parameters: ${parameters.join(', ') || 'none'})`);
  }
  let invariant: () => Invariant;
  let initialState: Uint8Array | undefined;
  switch (i['type']) {
    case 'gcounter':
      invariant = () => new GCounterInvariant();
      break;
    case 'max':
      invariant = () => new MaxInvariant();
      break;
    case 'bounded-gcounter':
      invariant = () => new BoundedGCounterInvariant();
      try {
        initialState = new BoundedCounterState(0n, big(i, 'capacity', (1n << 64n) - 1n)).toBytes();
      } catch (error) {
        throw error instanceof ConfigError ? new ConfigError(`invariant.${error.field}`, error.message.replace(/^config: [^:]+: /, '')) : new ConfigError('invariant.capacity', (error as Error).message);
      }
      break;
    case 'total-supply':
      invariant = () => new TotalSupplyInvariant();
      try {
        const d = new ConservationState(0n);
        initialState = new ConservationState(big(i, 'balance', 0n), big(i, 'min', d.min), big(i, 'max', d.max)).toBytes();
      } catch (error) {
        throw error instanceof ConfigError ? new ConfigError(`invariant.${error.field}`, error.message.replace(/^config: [^:]+: /, '')) : new ConfigError('invariant', (error as Error).message);
      }
      break;
    default:
      throw new ConfigError('invariant.type', `must be one of ${INVARIANTS.join(', ')}, got ${JSON.stringify(i['type'])}`);
  }
  const bounded = i['type'] === 'bounded-gcounter' || i['type'] === 'total-supply';
  let escrow: NodeConfig['escrow'];
  if (bounded) {
    const e = o['escrow'];
    const members = (e as { members?: unknown } | undefined)?.members;
    if (!Array.isArray(members) || members.length === 0 || members.some((m) => typeof m !== 'string' || m.length === 0)) {
      throw new ConfigError('escrow.members', 'a bounded invariant needs escrow: { "members": [the node ids that split the bound] }');
    }
    escrow = { members: members as string[] };
  } else if (o['escrow'] !== undefined) throw new ConfigError('escrow', `only for a bounded invariant (bounded-gcounter, total-supply), not ${String(i['type'])}`);
  return {
    nodeId,
    dir,
    listen,
    advertise: str(o, 'advertise', false),
    peers: peers as string[],
    cluster: str(o, 'cluster', false),
    secret: plaintext ? undefined : secret,
    plaintext,
    invariant,
    initialState,
    escrow,
    metrics: str(o, 'metrics', false),
  };
}
