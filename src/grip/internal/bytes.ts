/**
 * Byte helpers shared by the GRIP decoders.
 *
 * Base64 is checked strictly: Pushpin's `QByteArray::fromBase64` skips characters it does not
 * know, so a typo silently publishes different bytes. Padding may be left out (many encoders do),
 * but the standard alphabet is required and the length must be a possible base64 length.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/

export const isBase64 = (text: string): boolean => BASE64.test(text)

/** Undefined when `text` is not base64 (see above). */
export const decodeBase64 = (text: string): Uint8Array | undefined =>
  isBase64(text) ? new Uint8Array(Buffer.from(text, "base64")) : undefined

const encoder = new TextEncoder()

export const utf8 = (text: string): Uint8Array => encoder.encode(text)

const strictDecoder = new TextDecoder("utf-8", { fatal: true })

/** Undefined when the bytes are not valid UTF-8. */
export const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return strictDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * The bytes behind a header value. Fetch `Headers` hand out each received byte as one character
 * (U+0000..U+00FF, "isomorphic decoding"), so this undoes that; a string holding wider characters
 * did not come off the wire and is taken as UTF-8 text.
 */
export const headerBytes = (value: string): Uint8Array => {
  const out = new Uint8Array(value.length)
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code > 0xff) return utf8(value)
    out[i] = code
  }
  return out
}

/** A header value as text: its bytes read as UTF-8 (as Pushpin's `QString::fromUtf8`), else as is. */
export const headerText = (value: string): string => decodeUtf8(headerBytes(value)) ?? value

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0)
