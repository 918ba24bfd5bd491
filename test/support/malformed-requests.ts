/**
 * Seeded generators of malformed HTTP requests for fuzz tests: each input is a valid request
 * with one to three mutations applied (byte flips, truncation, inserted garbage, duplicated or
 * broken header lines, random lengths, random chunk encodings, random WebSocket frames), or
 * plain random bytes. The same seed gives the same inputs, so a failure replays.
 */

/** mulberry32: small, fast, and good enough to spread mutations; not for anything secret. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Dice {
  constructor(private readonly random: () => number) {}

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1))
  }

  pick<T>(items: ReadonlyArray<T>): T {
    const item = items[this.int(0, items.length - 1)]
    if (item === undefined) throw new RangeError("pick from an empty list")
    return item
  }

  chance(probability: number): boolean {
    return this.random() < probability
  }

  bytes(length: number, printable = false): Buffer {
    const out = Buffer.alloc(length)
    for (let i = 0; i < length; i++) out[i] = printable ? this.int(0x20, 0x7e) : this.int(0, 255)
    return out
  }
}

export interface MalformedInput {
  /** What was done to which base, for a failure message. */
  readonly description: string
  readonly bytes: Buffer
}

const CRLF = "\r\n"
const END_OF_HEAD = Buffer.from(CRLF + CRLF)

const headAndBody = (input: Buffer): { head: string; body: Buffer } => {
  const end = input.indexOf(END_OF_HEAD)
  return end < 0
    ? { head: input.toString("latin1"), body: Buffer.alloc(0) }
    : { head: input.subarray(0, end).toString("latin1"), body: input.subarray(end + 4) }
}

const join = (head: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(head + CRLF + CRLF, "latin1"), body])

const withHeaderLines = (input: Buffer, edit: (lines: Array<string>) => void): Buffer => {
  const { head, body } = headAndBody(input)
  const lines = head.split(CRLF)
  edit(lines)
  return join(lines.join(CRLF), body)
}

/** A masked client frame; the first byte (FIN, RSV bits, opcode) is taken as given. */
const clientFrame = (dice: Dice, firstByte: number, payload: Buffer, declaredLength = BigInt(payload.length), masked = true): Buffer => {
  const header: Array<number> = [firstByte]
  const maskBit = masked ? 0x80 : 0
  if (declaredLength < 126n) header.push(maskBit | Number(declaredLength))
  else if (declaredLength < 65536n) header.push(maskBit | 126, Number(declaredLength >> 8n) & 0xff, Number(declaredLength) & 0xff)
  else {
    header.push(maskBit | 127)
    for (let shift = 56n; shift >= 0n; shift -= 8n) header.push(Number((declaredLength >> shift) & 0xffn))
  }
  if (!masked) return Buffer.concat([Buffer.from(header), payload])
  const key = dice.bytes(4)
  const masking = Buffer.from(payload.map((byte, i) => byte ^ (key[i % 4] ?? 0)))
  return Buffer.concat([Buffer.from(header), key, masking])
}

// ---------------------------------------------------------------------------------------------
// Valid requests to start from

export interface BaseRequest {
  readonly name: string
  readonly build: (dice: Dice) => Buffer
}

const chunked = (dice: Dice, body: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  for (let at = 0; at < body.length; ) {
    const size = Math.min(body.length - at, dice.int(1, 16))
    parts.push(Buffer.from(size.toString(16) + CRLF, "latin1"), body.subarray(at, at + size), Buffer.from(CRLF))
    at += size
  }
  parts.push(Buffer.from(`0${CRLF}${CRLF}`))
  return Buffer.concat(parts)
}

/** Valid requests to the client port: the test route, a proxied origin, a WebSocket. */
export const clientBases = (host: string, originPath: string): ReadonlyArray<BaseRequest> => [
  {
    name: "GET /",
    build: () => Buffer.from(`GET / HTTP/1.1${CRLF}Host: ${host}${CRLF}User-Agent: fuzz${CRLF}Accept: */*${CRLF}${CRLF}`, "latin1")
  },
  {
    name: "GET test-route 404",
    build: () =>
      Buffer.from(`GET /nope?a=1&b=2 HTTP/1.1${CRLF}Host: ${host}${CRLF}Accept: text/plain${CRLF}Cookie: a=b; c=d${CRLF}X-Custom: value${CRLF}${CRLF}`, "latin1")
  },
  {
    name: "POST origin Content-Length",
    build: (dice) => {
      const body = dice.bytes(dice.int(0, 64), true)
      return join(`POST ${originPath} HTTP/1.1${CRLF}Host: ${host}${CRLF}Content-Type: text/plain${CRLF}Content-Length: ${body.length}`, body)
    }
  },
  {
    name: "POST origin chunked",
    build: (dice) =>
      join(`POST ${originPath} HTTP/1.1${CRLF}Host: ${host}${CRLF}Transfer-Encoding: chunked`, chunked(dice, dice.bytes(dice.int(1, 64), true)))
  },
  {
    name: "WebSocket /ws + frames",
    build: (dice) =>
      Buffer.concat([
        Buffer.from(
          `GET /ws HTTP/1.1${CRLF}Host: ${host}${CRLF}Upgrade: websocket${CRLF}Connection: Upgrade${CRLF}` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==${CRLF}Sec-WebSocket-Version: 13${CRLF}${CRLF}`,
          "latin1"
        ),
        clientFrame(dice, 0x81, Buffer.from("hello")),
        clientFrame(dice, 0x82, dice.bytes(dice.int(0, 200)))
      ])
  }
]

/** Valid requests to the publish port. */
export const publishBases = (channel: string): ReadonlyArray<BaseRequest> => [
  {
    name: "POST /publish/",
    build: (dice) => {
      const body = Buffer.from(JSON.stringify({ items: [{ channel, formats: { "http-stream": { content: `fuzz ${dice.int(0, 1e6)}\n` } } }] }))
      return join(`POST /publish/ HTTP/1.1${CRLF}Host: localhost${CRLF}Content-Type: application/json${CRLF}Content-Length: ${body.length}`, body)
    }
  },
  {
    name: "POST /publish random JSON",
    build: (dice) => {
      const body = Buffer.from(randomJson(dice, 0))
      return join(`POST /publish HTTP/1.1${CRLF}Host: localhost${CRLF}Accept: ${dice.pick(["*/*", "application/json", "text/html"])}${CRLF}Content-Length: ${body.length}`, body)
    }
  },
  { name: "GET /", build: () => Buffer.from(`GET / HTTP/1.1${CRLF}Host: localhost${CRLF}${CRLF}`, "latin1") }
]

const randomJson = (dice: Dice, depth: number): string => {
  const kind = depth > 4 ? dice.int(0, 3) : dice.int(0, 7)
  switch (kind) {
    case 0:
      return String(dice.pick([0, -1, 1.5, 1e308, 200, 999999]))
    case 1:
      return JSON.stringify(dice.bytes(dice.int(0, 12), true).toString("latin1"))
    case 2:
      return dice.pick(["true", "false", "null"])
    case 3:
      return JSON.stringify(dice.pick(["items", "channel", "formats", "http-stream", "http-response", "ws-message", "close", "content"]))
    case 4:
    case 5: {
      const keys = ["items", "channel", "formats", "http-stream", "http-response", "ws-message", "content", "code", "action", "id", "prev-id", "body"]
      const entries = Array.from({ length: dice.int(0, 4) }, () => `${JSON.stringify(dice.pick(keys))}:${randomJson(dice, depth + 1)}`)
      return `{${entries.join(",")}}`
    }
    default:
      return `[${Array.from({ length: dice.int(0, 4) }, () => randomJson(dice, depth + 1)).join(",")}]`
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations

interface Mutation {
  readonly name: string
  readonly apply: (input: Buffer, dice: Dice) => Buffer
}

const BAD_HEADER_LINES = [
  "NoColonHere",
  " Leading-Space: x",
  "X Bad Name: y",
  "X-Space-Before-Colon : z",
  "\tfolded continuation",
  ": empty-name",
  "X-Nul: a\u0000b",
  "X-(Paren): v",
  "Host: second.example",
  "Host: a/b",
  "Expect: 100-continue",
  "Connection: close, upgrade",
  "Upgrade: websocket",
  "Content-Encoding: gzip"
]

const CONTENT_LENGTHS = ["-1", "0", "abc", "1e3", "0x10", "+5", " 7", "5, 6", "5,5", "99999999999999999999999", "18446744073709551616", "2000000000", "4294967296"]

const TRANSFER_ENCODINGS = ["chunked", "gzip", "gzip, chunked", "chunked, gzip", "identity", "xchunked", "chunked;q=1", "Chunked", "chunked, chunked"]

const METHODS = ["GET", "POST", "G ET", "", "FOO", "get", "\u0000GET", "GET\u0000", "M".repeat(300), "PRI", "CONNECT", "OPTIONS"]
const TARGETS = ["/", "", "*", "http://elsewhere/", "/a b", "/\u0000", "/%", "/%zz", `/${"a".repeat(9000)}`, "//", "/?" + "q".repeat(100), "/\u00ff"]
const VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1", "HTTP/1.x", "", "HTTP/11", "HTTP/0.9", "HTTP/1.1\u0000"]

const mutations: ReadonlyArray<Mutation> = [
  {
    name: "byte flips",
    apply: (input, dice) => {
      const out = Buffer.from(input)
      for (let n = dice.int(1, 8); n > 0 && out.length > 0; n--) out[dice.int(0, out.length - 1)] = dice.int(0, 255)
      return out
    }
  },
  {
    name: "bit flips",
    apply: (input, dice) => {
      const out = Buffer.from(input)
      for (let n = dice.int(1, 4); n > 0 && out.length > 0; n--) {
        const at = dice.int(0, out.length - 1)
        out[at] = (out[at] ?? 0) ^ (1 << dice.int(0, 7))
      }
      return out
    }
  },
  { name: "truncated", apply: (input, dice) => input.subarray(0, dice.int(1, Math.max(1, input.length - 1))) },
  {
    name: "garbage inserted",
    apply: (input, dice) => {
      const at = dice.int(0, input.length)
      return Buffer.concat([input.subarray(0, at), dice.bytes(dice.int(1, 64), dice.chance(0.5)), input.subarray(at)])
    }
  },
  {
    name: "header line duplicated",
    apply: (input, dice) =>
      withHeaderLines(input, (lines) => {
        if (lines.length < 2) return
        const at = dice.int(1, lines.length - 1)
        lines.splice(at, 0, lines[at] ?? "")
      })
  },
  {
    name: "bad header line",
    apply: (input, dice) =>
      withHeaderLines(input, (lines) => {
        const line = dice.chance(0.2) ? dice.bytes(dice.int(1, 40)).toString("latin1") : dice.pick(BAD_HEADER_LINES)
        lines.splice(dice.int(1, Math.max(1, lines.length)), 0, line)
      })
  },
  {
    name: "random Content-Length",
    apply: (input, dice) =>
      withHeaderLines(input, (lines) => {
        const value = dice.chance(0.3) ? String(dice.int(0, 100_000)) : dice.pick(CONTENT_LENGTHS)
        const existing = lines.findIndex((line) => /^content-length:/i.test(line))
        if (existing > 0 && dice.chance(0.6)) lines[existing] = `Content-Length: ${value}`
        else lines.push(`Content-Length: ${value}`)
      })
  },
  {
    name: "random Transfer-Encoding",
    apply: (input, dice) => withHeaderLines(input, (lines) => lines.push(`Transfer-Encoding: ${dice.pick(TRANSFER_ENCODINGS)}`))
  },
  {
    name: "random chunk encoding",
    apply: (input, dice) => {
      const { head } = headAndBody(input)
      const lines = head.split(CRLF).filter((line) => !/^(content-length|transfer-encoding):/i.test(line))
      lines.push("Transfer-Encoding: chunked")
      const parts: Array<string> = []
      for (let n = dice.int(0, 4); n > 0; n--) {
        const data = dice.bytes(dice.int(0, 20), true).toString("latin1")
        const declared = dice.pick([
          data.length.toString(16),
          (data.length + dice.int(1, 5)).toString(16),
          "zz",
          "-1",
          "ffffffffffffffffffff",
          `${data.length.toString(16)};ext=1`,
          ` ${data.length.toString(16)}`,
          ""
        ])
        parts.push(declared + dice.pick([CRLF, "\n", ""]) + data + dice.pick([CRLF, CRLF, "", "XX"]))
      }
      parts.push(dice.pick([`0${CRLF}${CRLF}`, `0${CRLF}Trailer: x${CRLF}${CRLF}`, "0", "", `0${CRLF}`]))
      return join(lines.join(CRLF), Buffer.from(parts.join(""), "latin1"))
    }
  },
  {
    name: "request line replaced",
    apply: (input, dice) =>
      withHeaderLines(input, (lines) => {
        lines[0] = [dice.pick(METHODS), dice.pick(TARGETS), dice.pick(VERSIONS)].join(dice.pick([" ", " ", "  ", "\t"]))
      })
  },
  {
    name: "line endings changed",
    apply: (input, dice) => {
      const text = input.toString("latin1")
      return Buffer.from(text.replace(/\r\n/g, (crlf) => (dice.chance(0.3) ? dice.pick(["\n", "\r", "\r\r\n", "\n\r"]) : crlf)), "latin1")
    }
  },
  {
    name: "oversized head",
    apply: (input, dice) =>
      withHeaderLines(input, (lines) => {
        if (dice.chance(0.5)) lines.push(`X-Big: ${"a".repeat(dice.int(1_000, 40_000))}`)
        else for (let n = dice.int(50, 300); n > 0; n--) lines.push(`X-Many-${n}: v`)
      })
  },
  {
    name: "random WebSocket frames appended",
    apply: (input, dice) => {
      const frames: Array<Buffer> = []
      for (let n = dice.int(1, 4); n > 0; n--) {
        const payload = dice.bytes(dice.int(0, 200))
        const declared = dice.chance(0.2) ? BigInt(dice.pick([126, 65536, 2 ** 40, 2 ** 53])) : BigInt(payload.length)
        frames.push(clientFrame(dice, dice.int(0, 255), payload, declared, dice.chance(0.8)))
      }
      return Buffer.concat([input, ...frames])
    }
  }
]

/**
 * `count` inputs from `seed`: mostly mutated bases, with some random binary mixed in. Each
 * description names the base and the mutations, so a failing input can be rebuilt by hand.
 */
export const malformedInputs = (seed: number, count: number, bases: ReadonlyArray<BaseRequest>): ReadonlyArray<MalformedInput> => {
  const dice = new Dice(seededRandom(seed))
  const inputs: Array<MalformedInput> = []
  for (let i = 0; i < count; i++) {
    if (dice.chance(0.05)) {
      const length = dice.int(1, 4096)
      inputs.push({ description: `#${i} random binary (${length} bytes)`, bytes: dice.bytes(length) })
      continue
    }
    const base = dice.pick(bases)
    let bytes = base.build(dice)
    const applied: Array<string> = []
    for (let n = dice.int(1, 3); n > 0; n--) {
      const mutation = dice.pick(mutations)
      bytes = mutation.apply(bytes, dice)
      applied.push(mutation.name)
    }
    inputs.push({ description: `#${i} ${base.name}: ${applied.join(", ")}`, bytes })
  }
  return inputs
}
