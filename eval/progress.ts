// A progress bar on stderr: redrawn in place on a terminal, a line every 10 % otherwise (CI logs).
export function progressBar(stream: NodeJS.WriteStream = process.stderr): (done: number, total: number, label: string) => void {
  const t0 = performance.now()
  let lastDecile = -1
  return (done, total, label) => {
    const frac = total ? done / total : 1
    const secs = ((performance.now() - t0) / 1000).toFixed(1)
    if (stream.isTTY) {
      const width = 30, full = Math.round(frac * width)
      const line = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${secs}s ${label}`
      stream.write(`\r${line.slice(0, (stream.columns ?? 100) - 1).padEnd((stream.columns ?? 100) - 1)}`)
      if (done >= total) stream.write('\n')
    } else {
      const decile = Math.floor(frac * 10)
      if (decile !== lastDecile) {
        lastDecile = decile
        stream.write(`progress ${(frac * 100).toFixed(0)}% (${done}/${total}) ${secs}s ${label}\n`)
      }
    }
  }
}
