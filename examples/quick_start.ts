import { ConservationState, I128_MAX, I128_MIN, Kernel, TotalSupplyInvariant, createFact, i128le } from 'ctfs';

// Initialize: balance = 0, bounds = [i128::MIN, i128::MAX]
const state = new ConservationState(0n, I128_MIN, I128_MAX);
const kernel = Kernel.withState(new TotalSupplyInvariant(), state.toCell());

// Admit a fact: +100 to balance (its id is the BLAKE3 content address of deps and payload)
const credit = createFact([], i128le(100n));
kernel.admit(credit);

// A fact that depends on the first one
kernel.admit(createFact([credit.id], i128le(-30n)));

console.log(ConservationState.fromCell(kernel.state).balance); // 70n
