/**
 * The payload the benchmark publishes: one `http-stream` item whose content is one line,
 * `<seq> <sentUs>\n`, where sentUs is CLOCK_MONOTONIC in µs at the publisher (bench/clock.ts).
 * bench/held-client.ts parses it on arrival.
 */
export const publishBody = (channel: string, seq: number, sentUs: number): string =>
  JSON.stringify({ items: [{ channel, formats: { "http-stream": { content: `${seq} ${sentUs}\n` } } }] })
