#!/usr/bin/env node
// Reads the sanitizer logs of a `npm run test:asan` run (one file per process) and fails on
// every AddressSanitizer or UBSan error, and on every leak whose allocation was made by kvtrim's
// own code (a frame in kvtrim.node among the first frames above the allocator). Leaks that Node
// makes on purpose at exit are listed as a count only.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const dir = process.argv[2]
const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : []
let errors = 0, ours = 0, theirs = 0
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8')
  for (const m of text.matchAll(/ERROR: AddressSanitizer: (?!.*detected memory leaks)[^\n]*|runtime error:[^\n]*/g)) {
    errors++
    console.error(`${path.basename(file)}: ${m[0]}`)
  }
  // One leak: "Direct leak of N byte(s) in M object(s) allocated from:" then "#k ..." frames.
  for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1)) {
    const frames = block.split('\n').filter((l) => /^\s+#\d+ /.test(l))
    const allocator = /(malloc|calloc|realloc|operator new|posix_memalign|aligned_alloc|strdup)\b/
    const caller = frames.filter((f) => !allocator.test(f) && !/libasan/.test(f)).slice(0, 4)
    if (caller.some((f) => /kvtrim\.node/.test(f))) {
      ours++
      console.error(`${path.basename(file)}: leak from kvtrim:\n${block.split('\n').slice(0, 12).join('\n')}`)
    } else {
      theirs++
    }
  }
}
console.log(`sanitizers: ${files.length} process logs, ${errors} errors, ${ours} leaks from kvtrim, ${theirs} leaks elsewhere (Node at exit; ignored)`)
process.exit(errors + ours > 0 ? 1 : 0)
