/** Reading HTTP/1.1 chunked bodies in tests (no trailers expected). */

export interface ChunkedRead {
  /** The complete chunks so far, in order. */
  readonly chunks: ReadonlyArray<Buffer>
  /** The last chunk and the empty line after it have arrived. */
  readonly ended: boolean
  /** Bytes of `data` the complete chunks (and the ending) took. */
  readonly used: number
}

/** The complete chunks at the start of `data`; a partial chunk at the end is left for later. */
export const readChunked = (data: Buffer): ChunkedRead => {
  const chunks: Array<Buffer> = []
  let offset = 0
  for (;;) {
    const lineEnd = data.indexOf("\r\n", offset)
    if (lineEnd < 0) return { chunks, ended: false, used: offset }
    const size = Number.parseInt(data.subarray(offset, lineEnd).toString("latin1"), 16)
    if (Number.isNaN(size)) throw new Error("bad chunk size")
    if (size === 0) {
      const whole = data.length >= lineEnd + 4
      return { chunks, ended: whole, used: whole ? lineEnd + 4 : offset }
    }
    if (data.length < lineEnd + 2 + size + 2) return { chunks, ended: false, used: offset }
    chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
    offset = lineEnd + 2 + size + 2
  }
}
