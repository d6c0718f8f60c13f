// One table of error codes: native/core/codes.def (from which native code's Code enum and code
// names are built) and lib/errors.ts's KVTRIM_ERROR_CODES must list the same codes in the same
// order, so that a code added on one side only fails here.
import { readFileSync } from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { KVTRIM_ERROR_CODES } from '../lib/errors'

const def = readFileSync(path.join(__dirname, '..', 'native', 'core', 'codes.def'), 'utf8')
const rows = [...def.matchAll(/^KVTRIM_CODE\((\w+),\s*"([A-Z0-9_]+)",\s*"([^"]+)"\)\s*$/gm)]

describe('error codes: native/core/codes.def and lib/errors.ts', () => {
  it('codes.def is all table rows (every non-comment line parsed)', () => {
    const lines = def.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('//'))
    expect(rows.length).toBe(lines.length)
    expect(rows.length).toBeGreaterThan(0)
  })

  it('the same codes in the same order', () => {
    expect(rows.map((r) => r[2])).toEqual([...KVTRIM_ERROR_CODES])
  })

  it('each code once, and each enum name the code in CamelCase', () => {
    expect(new Set(KVTRIM_ERROR_CODES).size).toBe(KVTRIM_ERROR_CODES.length)
    for (const [, name, code] of rows) {
      const camel = code.toLowerCase().replace(/(^|_)([a-z0-9])/g, (_m, _u, c: string) => c.toUpperCase())
      expect(name.toLowerCase(), code).toBe(camel.toLowerCase())
    }
  })
})
