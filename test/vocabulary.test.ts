/**
 * The admission vocabulary (README, "Naming"), checked on the public API's types, and the
 * deprecated names of 0.1 checked to still do what their new names do.
 *
 *   try…   never throws for an expected outcome: an admission returns its code (a number); a
 *          data-structure operation (tryPush, tryPop, tryAcquire, tryConsume) whether it happened
 *          (a boolean, or null for nothing)
 *   …Raw…  takes the fact as parts: (id, deps, payload) — after a tenant id where there is one
 *   …Async returns a Promise
 *   …Sync  exists only beside an async twin on the same object
 */
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  AdmitCode,
  DualKernel,
  DurableKernel,
  EscalatingKernel,
  TwoLaneKernel,
  GCounterInvariant,
  Kernel,
  LatencyHistogram,
  MaxInvariant,
  MultiKernel,
  TenantKernel,
  TotalSupplyInvariant,
  factId,
  i128le,
} from './helpers/lib.js';

/** The public API's source, read for its types (not imported: the library comes through lib.ts). */
const INDEX = join(import.meta.dirname, '..', 'src', 'index.ts');

interface MethodInfo {
  readonly owner: string;
  readonly name: string;
  readonly params: string[];
  readonly returns: string;
  readonly deprecated: boolean;
}

/** Every public method (and getter-less member function) of every class `src/index.ts` exports. */
function publicMethods(): MethodInfo[] {
  const program = ts.createProgram([INDEX], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(INDEX)!;
  const moduleSymbol = checker.getSymbolAtLocation(source)!;
  const out: MethodInfo[] = [];
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!(symbol.flags & ts.SymbolFlags.Class)) continue;
    const declaration = symbol.valueDeclaration;
    if (declaration === undefined) continue;
    const instance = checker.getDeclaredTypeOfSymbol(symbol);
    const statics = checker.getTypeOfSymbolAtLocation(symbol, declaration);
    for (const [type, prefix] of [[instance, ''], [statics, 'static ']] as const) {
      for (const property of checker.getPropertiesOfType(type)) {
        const decl = property.valueDeclaration ?? property.declarations?.[0];
        if (decl === undefined || !ts.isMethodDeclaration(decl)) continue;
        if (ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (decl.name.kind !== ts.SyntaxKind.Identifier) continue; // symbol-keyed internals
        const signature = checker.getSignaturesOfType(checker.getTypeOfSymbolAtLocation(property, decl), ts.SignatureKind.Call)[0]!;
        out.push({
          owner: `${prefix}${symbol.name}`,
          name: property.name,
          params: signature.getParameters().map((p) => p.name),
          returns: checker.typeToString(signature.getReturnType()),
          deprecated: ts.getJSDocTags(decl).some((t) => t.tagName.text === 'deprecated'),
        });
      }
    }
  }
  return out;
}

const methods = publicMethods();
const current = methods.filter((m) => !m.deprecated);
const where = (m: MethodInfo): string => `${m.owner}.${m.name}(${m.params.join(', ')}): ${m.returns}`;

describe('the admission vocabulary holds on every public class', () => {
  it('sees the API (the checks below are not vacuous)', () => {
    const names = new Set(current.map((m) => `${m.owner}.${m.name}`));
    for (const n of ['Kernel.tryAdmitRaw', 'TenantKernel.tryAdmitRaw', 'KernelPool.admitBatchAsync', 'KernelPool.admitBatchSync', 'DurableKernel.admitRawWithHandle']) {
      expect(names, n).toContain(n);
    }
    expect(methods.filter((m) => m.deprecated).length).toBeGreaterThan(10);
  });

  it('try… returns a code (admissions) or whether it happened (data structures)', () => {
    const broken = current.filter((m) => {
      if (!/^try[A-Z]/.test(m.name)) return false;
      if (/Admit/.test(m.name)) return m.returns !== 'number';
      return m.returns !== 'boolean' && !/ \| null$/.test(m.returns);
    });
    expect(broken.map(where)).toEqual([]);
  });

  it('…Raw… takes (id, deps, payload…), after a tenant id where there is one', () => {
    const broken = current.filter((m) => {
      if (!/Raw/.test(m.name)) return false;
      const parts = m.params[0] === 'tenantId' ? m.params.slice(1) : m.params;
      return parts[0] !== 'id' || parts[1] !== 'deps' || !/^(payloads?|firstPayload)$/.test(parts[2] ?? '');
    });
    expect(broken.map(where)).toEqual([]);
  });

  it('…Async returns a Promise', () => {
    expect(current.filter((m) => /Async$/.test(m.name) && !/^Promise</.test(m.returns)).map(where)).toEqual([]);
  });

  it('…Sync exists only beside an async twin, and returns no Promise', () => {
    const broken = current.filter((m) => {
      if (!/Sync$/.test(m.name)) return false;
      const stem = m.name.slice(0, -'Sync'.length);
      const twin = current.find((t) => t.owner === m.owner && (t.name === `${stem}Async` || t.name === stem) && /^Promise</.test(t.returns));
      return twin === undefined || /^Promise</.test(m.returns);
    });
    expect(broken.map(where)).toEqual([]);
  });

  it('one name means one thing: a name returns a Promise on every class or on none', () => {
    // `close` is lifecycle, not admission: it returns a Promise where there is I/O to finish
    // (a durable kernel, a pool, a server) and nothing where there is none (a ring's producer end).
    const exempt = new Set(['close']);
    const byName = new Map<string, Set<boolean>>();
    for (const m of current) {
      if (m.owner.startsWith('static ') || exempt.has(m.name)) continue;
      const kinds = byName.get(m.name) ?? new Set<boolean>();
      kinds.add(/^Promise</.test(m.returns));
      byName.set(m.name, kinds);
    }
    expect([...byName].filter(([, kinds]) => kinds.size > 1).map(([name]) => name)).toEqual([]);
  });
});

const amount = (n: number): Uint8Array => i128le(BigInt(n));
const fact = (n: number): { id: Uint8Array; payload: Uint8Array } => ({ id: factId([], amount(n)), payload: amount(n) });

describe('deprecated names still work, exactly like their new names', () => {
  it('Kernel.admitInstrumented = tryAdmitRawInstrumented', () => {
    const [a, b] = [new Kernel(new TotalSupplyInvariant()), new Kernel(new TotalSupplyInvariant())];
    const [ha, hb] = [new LatencyHistogram(), new LatencyHistogram()];
    for (const n of [1, 2, 2]) {
      const { id, payload } = fact(n);
      expect(a.admitInstrumented(id, [], payload, ha)).toBe(b.tryAdmitRawInstrumented(id, [], payload, hb));
    }
    expect(a.digest()).toEqual(b.digest());
    expect(ha.snapshot().count).toBe(3);
    expect(ha.snapshot().count).toBe(hb.snapshot().count);
  });

  it('TenantKernel.tryAdmit/admit/admitInstrumented/state = tryAdmitRaw/admitRaw/tryAdmitRawInstrumented/stateOf', () => {
    const [a, b] = [new TenantKernel(new TotalSupplyInvariant()), new TenantKernel(new TotalSupplyInvariant())];
    a.registerTenant(1);
    b.registerTenant(1);
    const h = new LatencyHistogram();
    const codes = [fact(1), fact(1), fact(3)].map(({ id, payload }) => [a.tryAdmit(1, id, [], payload), b.tryAdmitRaw(1, id, [], payload)]);
    expect(codes).toEqual([[AdmitCode.Ok, AdmitCode.Ok], [AdmitCode.DuplicateFact, AdmitCode.DuplicateFact], [AdmitCode.Ok, AdmitCode.Ok]]);
    a.admit(1, fact(4).id, [], fact(4).payload);
    b.admitRaw(1, fact(4).id, [], fact(4).payload);
    expect(a.admitInstrumented(1, fact(5).id, [], fact(5).payload, h)).toBe(b.tryAdmitRawInstrumented(1, fact(5).id, [], fact(5).payload, h));
    expect(a.state(1)).toEqual(b.stateOf(1));
    expect(() => a.admit(1, fact(4).id, [], fact(4).payload)).toThrow(expect.objectContaining({ code: 'DuplicateFact' }));
  });

  it('MultiKernel and DualKernel: tryAdmit/admit/admitInstrumented/state = tryAdmitRaw/admitRaw/tryAdmitRawInstrumented/stateOf', () => {
    const multi = (): MultiKernel => {
      const k = new MultiKernel();
      k.register(new TotalSupplyInvariant());
      k.register(new MaxInvariant());
      return k;
    };
    const [a, b] = [multi(), multi()];
    const h = new LatencyHistogram();
    const max = (n: number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);
    const p = (n: number): Uint8Array[] => [amount(n), max(n)];
    const id = (n: number): Uint8Array => factId([], amount(n));
    expect(a.tryAdmit(id(1), [], p(1))).toBe(b.tryAdmitRaw(id(1), [], p(1)));
    a.admit(id(2), [], p(2));
    b.admitRaw(id(2), [], p(2));
    expect(a.admitInstrumented(id(3), [], p(3), h)).toBe(b.tryAdmitRawInstrumented(id(3), [], p(3), h));
    expect(a.state(0)).toEqual(b.stateOf(0));
    expect(a.state(1)).toEqual(b.stateOf(1));
    expect(b.states).toEqual([b.stateOf(0), b.stateOf(1)]);

    const [c, d] = [new DualKernel(new TotalSupplyInvariant(), undefined, new GCounterInvariant(), undefined), new DualKernel(new TotalSupplyInvariant(), undefined, new GCounterInvariant(), undefined)];
    const g = max;
    expect(c.tryAdmit(id(1), [], amount(1), g(1))).toBe(d.tryAdmitRaw(id(1), [], amount(1), g(1)));
    c.admit(id(2), [], amount(2), g(2));
    d.admitRaw(id(2), [], amount(2), g(2));
    expect(c.admitInstrumented(id(3), [], amount(3), g(3), h)).toBe(d.tryAdmitRawInstrumented(id(3), [], amount(3), g(3), h));
    expect(c.states).toEqual([d.stateOf(0), d.stateOf(1)]);
  });
});

describe('one pair of withState/attach factories serves every kernel class', () => {
  const initial = (): Uint8Array => new TotalSupplyInvariant().initialState();

  it('builds the class it is called on, typed with the invariant it was given', () => {
    for (const K of [Kernel, TwoLaneKernel, EscalatingKernel]) {
      const kernel = K.withState(new TotalSupplyInvariant(), initial());
      expect(kernel).toBeInstanceOf(K);
      kernel.admitRaw(fact(9).id, [], fact(9).payload);
      const reader = K.attach(kernel.shared, new TotalSupplyInvariant());
      expect(reader).toBeInstanceOf(K);
      expect(reader.contains(fact(9).id)).toBe(false); // nothing published yet
      kernel.publish();
      expect(reader.sync().size).toBe(1);
    }
    const typed = Kernel.withState(new TotalSupplyInvariant(), initial());
    expectTypeOf(typed.invariant).toMatchTypeOf<TotalSupplyInvariant>();
    expectTypeOf(TwoLaneKernel.attach(typed.shared, new TotalSupplyInvariant())).toMatchTypeOf<TwoLaneKernel<TotalSupplyInvariant>>();
  });

  it('a durable kernel cannot be built by them (a type error, and InvalidArgument at run time)', () => {
    const call = DurableKernel.withState as unknown as (this: unknown, ...args: unknown[]) => unknown;
    expect(() => call.call(DurableKernel, new TotalSupplyInvariant(), initial())).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    // @ts-expect-error DurableKernel's constructor is protected: open() is the only way in
    expect(() => DurableKernel.withState(new TotalSupplyInvariant(), initial())).toThrow();
  });
});
