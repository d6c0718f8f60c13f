// The test model (TinyStories 260K, llama2.c format) for the suites that run kvtrim on a real
// model: loaded once per file, or a skip reason that says where it was looked for
// (KVTRIM_REQUIRE_MODEL=1 makes its absence a failure, for CI).
import { Llama2Model } from '../eval/llama2c'
import { Tokenizer } from '../eval/tokenizer'
import { findModel } from '../eval/model-dir'

export interface TestModel {
  model: Llama2Model
  tokenizer: Tokenizer
}

const found = findModel()
/** Why the model suites are skipped, or undefined when the model is present. */
export const skipReason: string | undefined = 'missing' in found ? `model suites skipped: ${found.missing}` : undefined
if (skipReason && process.env.KVTRIM_REQUIRE_MODEL === '1') throw new Error(`KVTRIM_REQUIRE_MODEL=1 but ${skipReason}`)
if (skipReason) console.warn(skipReason)

let loaded: TestModel | undefined
export function testModel(): TestModel {
  if ('missing' in found) throw new Error(found.missing)
  if (!loaded) {
    const model = Llama2Model.load(found.checkpoint)
    loaded = { model, tokenizer: Tokenizer.load(found.tokenizer, model.config.vocabSize) }
  }
  return loaded
}

/** A name for a describe() that says when and why it is skipped. */
export const suiteName = (name: string): string => (skipReason ? `${name} (skipped: ${skipReason})` : name)
