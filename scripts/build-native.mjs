#!/usr/bin/env node
// Builds the native fabric addon (native/) when libfabric's headers are installed.
//
//   node scripts/build-native.mjs            explicit build (npm run build:native): fails loudly
//   node scripts/build-native.mjs --optional install-time build (npm install / npm ci): never fails the
//                                            install; without libfabric-dev it prints one line and the
//                                            TypeScript transport stays in charge
//
// node-gyp is npm's bundled one (npm exports its path as npm_config_node_gyp) and takes node's headers from
// nodedir=/usr in the project .npmrc, so nothing is downloaded.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const optional = process.argv.includes('--optional');
const header = '/usr/include/rdma/fabric.h';

function skip(reason) {
  process.stderr.write(`squall: native fabric addon not built (${reason}); the TypeScript transport is used\n`);
  process.exit(optional ? 0 : 1);
}

if (!existsSync(header)) skip(`no ${header}: apt-get install -y libfabric-dev, then npm run build:native`);

const require = createRequire(import.meta.url);
try {
  require.resolve('node-addon-api', { paths: [root] });
} catch {
  skip('node-addon-api is not installed');
}

let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  } catch {
    skip('node-gyp not found (run through npm: npm run build:native)');
  }
}
const nodedir = process.env.npm_config_nodedir || '/usr';
const args = [gyp, 'rebuild', '-j', 'max', `--nodedir=${nodedir}`, '--directory', join(root, 'native')];
const quiet = optional ? ['ignore', 'ignore', 'pipe'] : 'inherit';
const r = spawnSync(process.execPath, args, { cwd: root, stdio: quiet, encoding: 'utf8' });
if (r.status !== 0) {
  if (optional && r.stderr) process.stderr.write(r.stderr.split('\n').slice(-30).join('\n'));
  skip(`node-gyp exited with ${r.status ?? r.signal}`);
}
if (optional) process.stderr.write('squall: native fabric addon built (native/build/Release/squall_fabric.node)\n');
