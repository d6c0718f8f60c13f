// Where the test model is: KVTRIM_MODEL_DIR, or ../shared/models beside the repository.
import { existsSync } from 'node:fs'
import path from 'node:path'

export const repoRoot = path.resolve(__dirname, '..')
export const CHECKPOINT = 'stories260K.bin'
export const TOKENIZER = 'tok512.bin'

export function modelDir(): string {
  return process.env.KVTRIM_MODEL_DIR ?? path.join(repoRoot, '..', 'shared', 'models')
}

/** The model's files, or why they are not there (a sentence for a skip message). */
export function findModel(dir = modelDir()): { checkpoint: string; tokenizer: string } | { missing: string } {
  const checkpoint = path.join(dir, CHECKPOINT), tokenizer = path.join(dir, TOKENIZER)
  for (const f of [checkpoint, tokenizer]) {
    if (!existsSync(f)) return { missing: `${f} is absent: set KVTRIM_MODEL_DIR to the directory holding ${CHECKPOINT} and ${TOKENIZER} (TinyStories 260K, llama2.c format)` }
  }
  return { checkpoint, tokenizer }
}
