/**
 * What the admitting thread and the replication worker say to each other by message: setup and
 * control only (peers, status, shutdown). Facts never travel this way; they go through the rings.
 */
import type { LinkSecurity } from './link-security.js';

export interface ReplicationWorkerData {
  readonly nodeId: string;
  readonly clusterId: Uint8Array;
  readonly sketchKey: Uint8Array;
  readonly incarnation: number;
  /** Where to listen, `host:port` (checked). */
  readonly listen: string;
  /** The address peers are told to dial (default: the bound one). */
  readonly advertise: string | undefined;
  readonly peers: readonly string[];
  readonly security: LinkSecurity;
  /** kernel → net ring (Local records and answers) and net → kernel ring (Admit records). */
  readonly toNet: SharedArrayBuffer;
  readonly toKernel: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
  /** A durable kernel: its WAL directory and control block; facts through `through` are read from the WAL at start. */
  readonly durable: { readonly dir: string; readonly control: SharedArrayBuffer; readonly through: number } | undefined;
  readonly tuning: ReplicationTuning;
}

export interface ReplicationTuning {
  readonly antiEntropyMs: number;
  readonly sketchCells: number;
  readonly maxPending: number;
  /** Fact frames queued on one link beyond this are dropped (the peer catches up by reconciliation). */
  readonly maxLinkBufferBytes: number;
  /** Reconnect backoff: first delay and cap, ms. */
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly probeMs: number | undefined;
}

export type PeerState = 'connecting' | 'handshaking' | 'ready' | 'backoff';

/** One peer as `NetworkingKernel.peers()` reports it. */
export interface PeerStatus {
  /** The address dialled, or the remote address of an accepted link. */
  readonly address: string;
  /** The peer's node id once its Hello arrived. */
  readonly nodeId: string | undefined;
  readonly direction: 'out' | 'in';
  readonly state: PeerState;
  /** What the failure detector believes of the node (alive, suspect, failed), once known. */
  readonly member: 'alive' | 'suspect' | 'failed' | undefined;
  readonly incarnation: number | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Reconnect attempts since the last ready link (dialled peers). */
  readonly attempts: number;
  readonly lastError: string | undefined;
}

/** An escrow hint to or from node `nodeId`: a QuotaRequest (`request`) or a QuotaDenial. */
export interface QuotaMessage {
  readonly type: 'quota';
  readonly nodeId: string;
  readonly request: boolean;
  readonly requestId: Uint8Array;
  readonly resource: number;
  readonly amount: bigint;
}

export type ToWorker = { readonly type: 'addPeer'; readonly address: string } | { readonly type: 'removePeer'; readonly address: string } | { readonly type: 'close' } | QuotaMessage;

export type FromWorker =
  | { readonly type: 'ready'; readonly address: string }
  | { readonly type: 'peers'; readonly peers: PeerStatus[] }
  | { readonly type: 'failed'; readonly message: string; readonly code: string }
  | { readonly type: 'closed' }
  | QuotaMessage;
