/** Reads a streamed body chunk by chunk into text, resolving once `until` matches (or the stream ends). */
export const readUntil = async (
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: (text: string) => boolean,
  sofar = ""
): Promise<string> => {
  const decoder = new TextDecoder()
  let text = sofar
  while (!until(text)) {
    const { done, value } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
  }
  return text
}
