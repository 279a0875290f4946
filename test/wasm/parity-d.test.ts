// SPDX-License-Identifier: MIT
// Wasm sweeps against JS sweeps, to a relative 1e-12, for every function of the scalar test programs that
// lowers (here: newuser3 to newuser6; the split over four files is explained in support.ts).
import { test } from 'uvu';
import { parityTests } from './support.js';

await parityTests(['newuser3', 'newuser4', 'newuser5', 'newuser6']);

test.run();
