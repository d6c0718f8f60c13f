// Worker threads on the arm64 addon (a subset of the crash suite's scenarios, in process: a
// Worker is a thread, which qemu-user runs like any other). A worker computes the contract's norms;
// a worker terminated with async operations pending harms neither the process nor later calls.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { kvtrim, oracle, randomTensor, rng, sameBits, seed } from './common.mjs'

const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url))

test('keyNorms in a worker thread equals the oracle', async () => {
  const keys = randomTensor(rng(seed), 'bfloat16', [1, 4, 37, 65])
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const k = require(workerData.dist)
    k.keyNorms(workerData.keys).then((n) => parentPort.postMessage({ norms: n, isa: k.backend().cpu.isa }))`,
  { eval: true, workerData: { dist, keys } })
  const [msg] = await once(w, 'message')
  await once(w, 'exit')
  assert.equal(msg.isa, kvtrim.backend().cpu.isa)
  sameBits(msg.norms, oracle.keyNorms(keys), 'worker keyNorms')
})

test('a worker terminated with async operations pending: no crash, later calls work', async () => {
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const k = require(workerData.dist)
    const n = 1 << 20
    const keys = { type: 'float16', data: new Uint16Array(n).fill(0x3c00), dims: [1, 8, n / 1024, 128] }
    const values = { type: 'float16', data: new Uint16Array(n).fill(0x4000), dims: [1, 8, n / 1024, 128] }
    for (let i = 0; i < 8; i++) { k.keyNorms(keys); k.compress(keys, values, { keepRatio: 0.5 }) }
    parentPort.postMessage('pending')`,
  { eval: true, workerData: { dist } })
  const [msg] = await once(w, 'message')
  assert.equal(msg, 'pending')
  await w.terminate()
  const keys = randomTensor(rng(seed + 1), 'float16', [1, 2, 9, 8])
  sameBits(await kvtrim.keyNorms(keys), oracle.keyNorms(keys), 'after the worker ended')
})
