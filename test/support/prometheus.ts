/**
 * A strict reader of Prometheus text exposition for tests: every sample must belong to a family
 * announced by `# HELP` and `# TYPE` lines, names and labels must be well formed, and values
 * must be numbers. Samples are keyed `name{label="value",...}` with labels in sorted order.
 */

export interface Scrape {
  readonly types: ReadonlyMap<string, string>
  readonly samples: ReadonlyMap<string, number>
  /** The sample's value; throws when the scrape does not have it. */
  readonly value: (name: string, labels?: Readonly<Record<string, string>>) => number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/

export const sampleKey = (name: string, labels: Readonly<Record<string, string>> = {}): string => {
  const names = Object.keys(labels).sort()
  return names.length === 0 ? name : `${name}{${names.map((label) => `${label}="${labels[label]}"`).join(",")}}`
}

export const parsePrometheus = (text: string): Scrape => {
  const types = new Map<string, string>()
  const helped = new Set<string>()
  const samples = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    if (line.startsWith("# HELP ")) {
      helped.add(line.slice(7).split(" ")[0] as string)
      continue
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ")
      if (name === undefined || (type !== "counter" && type !== "gauge")) throw new Error(`bad TYPE line: ${line}`)
      if (!helped.has(name)) throw new Error(`TYPE before HELP for ${name}`)
      types.set(name, type)
      continue
    }
    const match = SAMPLE.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const [, name, , labelText, valueText] = match as unknown as [string, string, string | undefined, string | undefined, string]
    if (!types.has(name)) throw new Error(`sample without TYPE: ${line}`)
    const labels: Record<string, string> = {}
    if (labelText !== undefined && labelText !== "") {
      for (const part of labelText.split(",")) {
        const label = LABEL.exec(part)
        if (label === null) throw new Error(`bad label in: ${line}`)
        labels[label[1] as string] = label[2] as string
      }
    }
    const value = Number(valueText)
    if (Number.isNaN(value)) throw new Error(`bad value in: ${line}`)
    const key = sampleKey(name, labels)
    if (samples.has(key)) throw new Error(`duplicate sample: ${key}`)
    samples.set(key, value)
  }
  return {
    types,
    samples,
    value: (name, labels) => {
      const found = samples.get(sampleKey(name, labels))
      if (found === undefined) throw new Error(`no sample ${sampleKey(name, labels)} in:\n${text}`)
      return found
    }
  }
}

/** Scrapes `url` and parses it. */
export const scrape = async (url: string): Promise<Scrape> => {
  const response = await fetch(url)
  if (response.status !== 200) throw new Error(`scrape ${url}: ${response.status}`)
  return parsePrometheus(await response.text())
}
