/**
 * Prometheus text exposition (format 0.0.4), pure: metric families in, text out.
 *
 * Pushpin writes `# HELP`, `# TYPE` and one sample line per metric, each name with
 * `prometheus_prefix` prepended; families here do the same, with labelled samples where one
 * name has several series (connections by transport, drops by reason...).
 */

export type MetricType = "counter" | "gauge"

export interface Sample {
  readonly labels?: Readonly<Record<string, string>>
  readonly value: number
}

export interface MetricFamily {
  readonly name: string
  readonly type: MetricType
  readonly help: string
  readonly samples: ReadonlyArray<Sample>
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** Whether `prefix + name` is a valid metric name for every family name we use. */
export const isValidMetricPrefix = (prefix: string): boolean => prefix === "" || METRIC_NAME.test(`${prefix}x`)

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const escapeLabelValue = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const formatValue = (value: number): string => {
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "+Inf"
  if (value === -Infinity) return "-Inf"
  return String(value)
}

const formatLabels = (labels: Readonly<Record<string, string>> | undefined): string => {
  if (labels === undefined) return ""
  const parts: Array<string> = []
  for (const name in labels) {
    if (!LABEL_NAME.test(name)) throw new Error(`invalid Prometheus label name: ${name}`)
    parts.push(`${name}="${escapeLabelValue(labels[name] as string)}"`)
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

export const renderPrometheus = (families: ReadonlyArray<MetricFamily>, prefix: string): string => {
  let text = ""
  for (const family of families) {
    const name = `${prefix}${family.name}`
    if (!METRIC_NAME.test(name)) throw new Error(`invalid Prometheus metric name: ${name}`)
    text += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n`
    for (const sample of family.samples) text += `${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}\n`
  }
  return text
}

/** The media type Prometheus scrapers expect for the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
