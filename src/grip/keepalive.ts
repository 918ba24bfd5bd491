/**
 * Keep-alive payloads for stream holds (`Grip-Keep-Alive: <data>; format=raw|cstring|base64`).
 *
 * `cstring` understands `\\`, `\r`, `\n` and `\xHH`. Pushpin silently drops any other escaped
 * character (`\t` vanishes); here an unknown escape is an error, since the origin clearly meant
 * some byte and would otherwise get a stream that never carries it.
 */
import { Result } from "effect"
import { decodeBase64, headerBytes } from "./internal/bytes.ts"

export type KeepAliveFormat = "raw" | "cstring" | "base64"

export const KEEP_ALIVE_FORMATS: ReadonlyArray<KeepAliveFormat> = ["raw", "cstring", "base64"]

const hexValue = (c: string | undefined): number => (c !== undefined && /^[0-9a-fA-F]$/.test(c) ? parseInt(c, 16) : -1)

/** Bytes of a `cstring` keep-alive value (see `headerBytes`); undefined on a bad or truncated escape. */
export const unescapeCString = (text: string): Uint8Array | undefined => {
  const out: Array<number> = []
  const plain = (from: number, to: number) => {
    if (to > from) out.push(...headerBytes(text.slice(from, to)))
  }
  let runStart = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "\\") continue
    plain(runStart, i)
    const escape = text[i + 1]
    if (escape === "\\") out.push(0x5c)
    else if (escape === "r") out.push(0x0d)
    else if (escape === "n") out.push(0x0a)
    else if (escape === "x") {
      const hi = hexValue(text[i + 2])
      const lo = hexValue(text[i + 3])
      if (hi < 0 || lo < 0) return undefined
      out.push(hi * 16 + lo)
      i += 2
    } else return undefined
    i += 1
    runStart = i + 1
  }
  plain(runStart, text.length)
  return new Uint8Array(out)
}

/**
 * Decodes a keep-alive value in the given format; the error text names what is wrong. `value` is
 * the header value as Fetch `Headers` give it (one character per received byte).
 */
export const decodeKeepAliveData = (value: string, format: KeepAliveFormat): Result.Result<Uint8Array, string> => {
  switch (format) {
    case "raw":
      return Result.succeed(headerBytes(value))
    case "cstring": {
      const bytes = unescapeCString(value)
      return bytes === undefined
        ? Result.fail("failed to parse Grip-Keep-Alive cstring format")
        : Result.succeed(bytes)
    }
    case "base64": {
      const bytes = decodeBase64(value)
      return bytes === undefined
        ? Result.fail("failed to parse Grip-Keep-Alive base64 format")
        : Result.succeed(bytes)
    }
  }
}
