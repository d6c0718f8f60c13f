#!/usr/bin/env node
// Builds the native addon with cmake-js into build/Release. With --if-missing (the package's
// install script) it does nothing when an addon already loads (a prebuild or an earlier build).
// KVTRIM_CUDA=AUTO|ON|OFF chooses the CUDA path (AUTO: when nvcc is found).
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')

if (process.argv.includes('--if-missing')) {
  try {
    require('node-gyp-build')(root)
    process.exit(0)
  } catch {
    // no usable addon: build one below
  }
}

let cmakeJs
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] })
} catch {
  console.error('kvtrim: cannot build from source: the cmake-js package is not installed.\n' +
    '  Run `npm install cmake-js node-addon-api` in this project, then `npm run build`.')
  process.exit(1)
}
for (const [tool, hint] of [['cmake', 'install CMake 3.18 or newer (apt-get install cmake)'],
  ['c++', 'install a C++17 compiler (apt-get install g++)']]) {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' })
  if (r.error || r.status !== 0) {
    console.error(`kvtrim: cannot build from source: \`${tool}\` was not found; ${hint}.`)
    process.exit(1)
  }
}

// --emulate: the CUDA sources built by g++ against kvtrim's emulator, into build-emu/
// (loaded when KVTRIM_EMULATE_CUDA=1); KVTRIM_SANITIZE=1 adds ASan and UBSan to that build.
const emulate = process.argv.includes('--emulate')
const cuda = (process.env.KVTRIM_CUDA || 'AUTO').toUpperCase()
const args = emulate
  ? [cmakeJs, 'build', '--out', process.env.KVTRIM_EMU_OUT || 'build-emu', '--CDKVTRIM_EMULATE=ON',
      '--CDKVTRIM_SANITIZE=' + (process.env.KVTRIM_SANITIZE === '1' ? 'ON' : 'OFF')]
  : [cmakeJs, 'build', '--CDKVTRIM_CUDA=' + cuda, '--CDKVTRIM_PORTABLE=OFF']
if (process.env.KVTRIM_CMAKE_ARGS) args.push(...process.env.KVTRIM_CMAKE_ARGS.split(' ').filter(Boolean))
const env = { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2' }
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env })
process.exit(r.status ?? 1)
