#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The `pullback` command; the work is done by the compiled CLI (run `npm run build` in a checkout).
import { main } from '../dist/transformer/entry/cli.js';

process.exitCode = await main(process.argv.slice(2));
