import { describe, expect, test } from "bun:test"
import { HttpStreamReader } from "../../bench/http-stream-reader.ts"

const read = (pieces: ReadonlyArray<string>) => {
  const lines: Array<string> = []
  const reader = new HttpStreamReader((line) => lines.push(line))
  for (const piece of pieces) reader.push(piece)
  return { lines, reader }
}

const chunked = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
  "10\r\n[stream opened]\n\r\n" + "e\r\n1 1000\n2 2000\n\r\n" + "0\r\n\r\n"

describe("HttpStreamReader", () => {
  test("reads the status and the lines of a chunked body", () => {
    const { lines, reader } = read([chunked])
    expect(reader.status).toBe(200)
    expect(lines).toEqual(["[stream opened]", "1 1000", "2 2000"])
    expect(reader.finished).toBe(true)
    expect(reader.problem).toBeUndefined()
  })

  test("gives the same lines whatever the split into TCP segments", () => {
    for (let size = 1; size <= 7; size++) {
      const pieces: Array<string> = []
      for (let at = 0; at < chunked.length; at += size) pieces.push(chunked.slice(at, at + size))
      expect(read(pieces).lines).toEqual(["[stream opened]", "1 1000", "2 2000"])
    }
  })

  test("a line split across two chunks is one line", () => {
    const text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n1 1\r\n4\r\n000\n\r\n"
    expect(read([text]).lines).toEqual(["1 1000"])
  })

  test("a body without chunked coding runs until the connection closes", () => {
    const { lines, reader } = read(["HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[stream opened]\n3 3", "000\n"])
    expect(lines).toEqual(["[stream opened]", "3 3000"])
    expect(reader.finished).toBe(false)
  })

  test("reports other statuses and malformed chunks", () => {
    expect(read(["HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"]).reader.status).toBe(503)
    const broken = read(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc"]).reader
    expect(broken.problem).toContain("bad chunk size")
    expect(read(["SSH-2.0-OpenSSH\r\n\r\n"]).reader.problem).toContain("not an HTTP/1.x status line")
  })
})
