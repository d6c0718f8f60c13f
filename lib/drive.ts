// Sync and async twins written once. An operation that makes several native calls (one per
// layer) is a generator: it yields each call as a pair of thunks and receives the result (or the
// error, thrown at the yield). driveSync runs the ...Sync thunk of each call at once; driveAsync
// awaits the Promise thunk. So the walk, the bookkeeping and the error prefixes exist once.

/** One native call in both forms. */
export interface Call<R> {
  sync: () => R
  async: () => Promise<R>
}

export type Steps<R, T> = Generator<Call<R>, T, R>

export function driveSync<R, T>(steps: Steps<R, T>): T {
  let s = steps.next()
  while (!s.done) {
    let r: R
    try {
      r = s.value.sync()
    } catch (err) {
      s = steps.throw(err)
      continue
    }
    s = steps.next(r)
  }
  return s.value
}

export async function driveAsync<R, T>(steps: Steps<R, T>): Promise<T> {
  let s = steps.next()
  while (!s.done) {
    let r: R
    try {
      r = await s.value.async()
    } catch (err) {
      s = steps.throw(err)
      continue
    }
    s = steps.next(r)
  }
  return s.value
}
