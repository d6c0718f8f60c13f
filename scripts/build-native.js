#!/usr/bin/env node
// Builds the native addon with cmake-js into build/Release. With --if-missing (the package's
// install script) it does nothing when an addon already loads (a prebuild or an earlier build).
// KVTRIM_CUDA=AUTO|ON|OFF chooses the CUDA path (AUTO: when nvcc is found).
// A missing tool is named in one line (cmake-js, cmake, a C++ compiler, make/ninja) before
// anything runs, instead of a wall of CMake output.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const ifMissing = process.argv.includes('--if-missing')

if (ifMissing) {
  try {
    require('node-gyp-build')(root)
    process.exit(0)
  } catch {
    // no usable addon: build one below
  }
}

function fail(message) {
  console.error(`kvtrim: cannot build the native addon from source: ${message}`)
  if (ifMissing) {
    console.error(`kvtrim: no prebuilt binary matches ${process.platform}-${process.arch} ` +
      '(prebuilt: linux-x64 and linux-arm64 with glibc >= 2.17), so it must be built from source; see docs/install.md.')
  }
  process.exit(1)
}

function runs(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' })
  return !r.error && r.status === 0
}

let cmakeJs
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] })
} catch {
  // An installed kvtrim does not depend on cmake-js (it would add 40 packages to every install
  // for a fallback that the prebuilt binary makes rare): the user adds it when needed.
  fail('the build tools are not installed (the npm packages cmake-js, node-addon-api, node-api-headers).\n' +
    '  In your project run:\n' +
    '    npm install --save-dev cmake-js@^8 node-addon-api@^8 node-api-headers@^1\n' +
    `    node ${path.join(root, 'scripts', 'build-native.js')}`)
}
for (const pkg of ['node-addon-api', 'node-api-headers']) {
  try {
    require.resolve(`${pkg}/package.json`, { paths: [root] })
  } catch {
    fail(`the npm package ${pkg} is not installed; in your project run: npm install --save-dev ${pkg}`)
  }
}
if (!runs('cmake')) fail('`cmake` was not found on PATH; install CMake 3.18 or newer (e.g. apt-get install cmake).')
const cxx = process.env.CXX || ['c++', 'g++', 'clang++'].find((c) => runs(c))
if (!cxx || !runs(cxx)) {
  fail(`no C++ compiler was found (${process.env.CXX ? `CXX=${process.env.CXX} does not run` : 'tried c++, g++, clang++'}); ` +
    'install a C++17 compiler (e.g. apt-get install g++).')
}
if (!runs('ninja') && !runs('make')) fail('neither `ninja` nor `make` was found; install one (e.g. apt-get install make).')

// --emulate: the CUDA sources built by g++ against kvtrim's emulator, into build-emu/
// (loaded when KVTRIM_EMULATE_CUDA=1). KVTRIM_SANITIZE=1 adds ASan and UBSan to either build.
// --dev: the addon exports the development hooks (CMake KVTRIM_DEV_HOOKS: streams, launch
// geometry, timed launches, copy bandwidth) for benchmarks on a GPU (`npm run build:dev`).
// Emulator builds always have them; a build without --dev turns them off again (CMake caches
// options, so it is passed either way).
const emulate = process.argv.includes('--emulate')
const dev = process.argv.includes('--dev')
const cuda = (process.env.KVTRIM_CUDA || 'AUTO').toUpperCase()
if (!emulate && cuda === 'AUTO' && !process.env.CUDACXX && !runs('nvcc')) {
  console.error('kvtrim: nvcc (the CUDA toolkit) was not found on PATH: building the CPU path only. ' +
    'The addon works everywhere; put nvcc on PATH (or set CUDACXX) and rebuild to add the CUDA kernels.')
}
// KVTRIM_OUT (host) / KVTRIM_EMU_OUT (emulator) put a build elsewhere, e.g. the sanitized ones.
const out = emulate ? process.env.KVTRIM_EMU_OUT || 'build-emu' : process.env.KVTRIM_OUT || 'build'
const sanitize = '--CDKVTRIM_SANITIZE=' + (process.env.KVTRIM_SANITIZE === '1' ? 'ON' : 'OFF')
const options = emulate
  ? ['--CDKVTRIM_EMULATE=ON', sanitize]
  : ['--CDKVTRIM_CUDA=' + cuda, '--CDKVTRIM_PORTABLE=OFF', '--CDKVTRIM_EMULATE=OFF', sanitize,
      '--CDKVTRIM_DEV_HOOKS=' + (dev ? 'ON' : 'OFF')]
if (process.env.KVTRIM_CMAKE_ARGS) options.push(...process.env.KVTRIM_CMAKE_ARGS.split(' ').filter(Boolean))
const env = { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2' }
if (cxx && !process.env.CXX) env.CXX = cxx
// `cmake-js build` alone does not re-run CMake on an existing build directory, so options that
// changed (KVTRIM_CUDA, or the KVTRIM_PORTABLE of `npm run prebuildify`) would be ignored:
// configure first (incremental: CMake keeps its cache and ninja rebuilds only what changed).
for (const args of [[cmakeJs, 'configure', '--out', out, ...options], [cmakeJs, 'build', '--out', out]]) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env })
  if (r.status !== 0) {
    console.error(`kvtrim: the native build failed (cmake-js ${args[1]}); the first error above says why.`)
    process.exit(r.status ?? 1)
  }
}
if (!emulate && !fs.existsSync(path.join(root, out, 'Release', 'kvtrim.node'))) {
  fail(`cmake-js finished but ${path.join(out, 'Release', 'kvtrim.node')} is missing.`)
}
