// SPDX-License-Identifier: MIT
// The tsc plugin over the fake compiler, for the tspc runs of the tests (not itself a test file).
import { pluginWith } from '../../transformer/entry/tsc-plugin.js';
import { fakeCompiler } from './support.js';

export default pluginWith(() => fakeCompiler());
