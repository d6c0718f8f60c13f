#!/usr/bin/env node
// Stands in for node-gyp under prebuildify (`npm run prebuildify`): prebuildify 6 only knows
// node-gyp, calls `<this> rebuild --target=... --devdir=... --arch=x64 --release` and then moves
// the first build/Release/*.node into prebuilds/<platform>-<arch>/. kvtrim builds with cmake-js,
// so this runs cmake-js with the distribution settings instead and ignores node-gyp's arguments
// (Node-API: one binary for every Node version, so --target does not matter).
//
// Distribution settings: the CUDA path is required (KVTRIM_CUDA=ON: a prebuild without the
// kernels would be a silent regression), KVTRIM_PORTABLE=ON (static libstdc++, glibc 2.17 symbol
// versions, stripped; see CMakeLists.txt), KVTRIM_DEV_HOOKS=OFF (no development hooks, even when
// build/ was last configured by `npm run build:dev`). The build is incremental: flags are part of
// every compile command, so only what they change is rebuilt (the CUDA objects of an earlier
// `npm run build` are reused). KVTRIM_PREBUILD_CLEAN=1 starts from an empty build/ instead.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const args = process.argv.slice(2)
if (args[0] !== 'rebuild' && args[0] !== 'build') {
  console.error(`prebuild-node-gyp: expected "rebuild" from prebuildify, got: ${args.join(' ')}`)
  process.exit(2)
}
const arch = (args.find((a) => a.startsWith('--arch=')) || `--arch=${process.arch}`).slice(7)
if (arch !== process.arch) {
  console.error(`prebuild-node-gyp: cross-compiling (${process.arch} -> ${arch}) is not supported`)
  process.exit(2)
}

const out = path.join(root, 'build', 'Release', 'kvtrim.node')
fs.rmSync(out, { force: true })
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] })
if (process.env.KVTRIM_PREBUILD_CLEAN === '1') fs.rmSync(path.join(root, 'build'), { recursive: true, force: true })
const env = { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL || String(require('node:os').availableParallelism()) }
// `cmake-js build` alone does not re-run CMake on a configured build/ (its -D options would be
// ignored), hence an explicit configure first.
for (const cmd of [[cmakeJs, 'configure', '--CDKVTRIM_CUDA=ON', '--CDKVTRIM_PORTABLE=ON', '--CDKVTRIM_EMULATE=OFF',
  '--CDKVTRIM_DEV_HOOKS=OFF'],
  [cmakeJs, 'build']]) {
  const r = spawnSync(process.execPath, cmd, { cwd: root, stdio: 'inherit', env })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
if (!fs.existsSync(out)) {
  console.error(`prebuild-node-gyp: cmake-js finished but ${out} is missing`)
  process.exit(1)
}
