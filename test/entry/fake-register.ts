// SPDX-License-Identifier: MIT
// `node --import <this>`: the register hook over the fake compiler (not itself a test file).
import { register } from 'node:module';

register('./fake-loader.js', import.meta.url);
