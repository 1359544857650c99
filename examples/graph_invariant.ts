// A grow-only graph with constraints: GGraphInvariant on 8 vertices.
import assert from 'node:assert/strict';
import { AdmitCode, AlgebraicClass, GGraphInvariant, GraphState, InvariantCode, Kernel, createFact } from 'ctfs';

const graph = new GGraphInvariant();
assert.equal(graph.algebraicClass, AlgebraicClass.Lattice);
const kernel = Kernel.withState(graph, new GraphState(8).toCell());

const edge = (from: number, to: number) => createFact([], GGraphInvariant.payload(from, to));
for (const [f, t] of [[0, 1], [1, 2], [2, 3], [3, 0]] as const) kernel.admit(edge(f, t));
console.log('edges:', JSON.stringify(GraphState.fromCell(kernel.state).edges()));

// Out-of-range vertices and self-loops are refused with a clear code (upstream read past its matrix).
const outOfRange = edge(0, 9);
assert.equal(kernel.tryAdmit(outOfRange), AdmitCode.InvariantViolation);
assert.equal(kernel.lastInvariantError, InvariantCode.BoundsViolation);
assert.equal(kernel.tryAdmit(edge(4, 4)), AdmitCode.InvariantViolation);
console.log('edge (0, 9) and self-loop (4, 4) refused: BoundsViolation');

// Degree limits make acceptance order-dependent, so they need the bounded flavour.
const limited = new GGraphInvariant({ degreeLimits: true });
assert.equal(limited.algebraicClass, AlgebraicClass.BoundedCommutative);
const hub = Kernel.withState(limited, new GraphState(8, { directed: true, maxOutDegree: 2 }).toCell());
hub.admit(edge(0, 1));
hub.admit(edge(0, 2));
assert.equal(hub.tryAdmit(edge(0, 3)), AdmitCode.InvariantViolation);
assert.equal(hub.lastInvariantError, InvariantCode.Overflow);
console.log('directed, max out-degree 2: the third edge from vertex 0 is refused (Overflow)');
assert.equal(Kernel.withState(graph, new GraphState(8, { maxOutDegree: 2 }).toCell()).tryAdmit(edge(0, 1)), AdmitCode.InvariantViolation);
console.log('a degree-limited state under the lattice flavour is refused (BoundsViolation)');
