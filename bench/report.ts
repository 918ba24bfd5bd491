/**
 * Turns samples into medians, ratios and goal verdicts, and renders them as a console table
 * and as Markdown (pure: no I/O).
 */
import type { GoalVerdict, Metrics, Samples, Scenario, Side } from "./scenario.ts"
import { median } from "./stats.ts"

export interface SampleRecord {
  readonly side: Side
  readonly repeat: number
  readonly seconds: number
  readonly metrics?: Metrics
  readonly error?: string
}

export interface GoalResult extends GoalVerdict {
  readonly label: string
}

export interface ScenarioResult {
  readonly id: string
  readonly title: string
  readonly sides: ReadonlyArray<Side>
  readonly samples: ReadonlyArray<SampleRecord>
  readonly medians: Partial<Record<Side, Record<string, number>>>
  readonly goals: ReadonlyArray<GoalResult>
}

const SIDE_NAMES: Readonly<Record<Side, string>> = { "pushpin-ts": "pushpin-ts", pushpin: "Pushpin 1.36", ceiling: "ceiling" }

const sideName = (scenario: Scenario, side: Side): string =>
  side === "ceiling" ? (scenario.ceilingLabel ?? SIDE_NAMES.ceiling) : SIDE_NAMES[side]

const okMetrics = (samples: ReadonlyArray<SampleRecord>, side: Side): Array<Metrics> =>
  samples.filter((sample) => sample.side === side && sample.metrics !== undefined).map((sample) => sample.metrics as Metrics)

export const summarize = (scenario: Scenario, samples: ReadonlyArray<SampleRecord>): ScenarioResult => {
  const medians: Partial<Record<Side, Record<string, number>>> = {}
  for (const side of scenario.sides) {
    const measured = okMetrics(samples, side)
    if (measured.length === 0) continue
    const keys = new Set(measured.flatMap((metrics) => Object.keys(metrics)))
    medians[side] = Object.fromEntries([...keys].map((key) => [key, median(measured.map((metrics) => metrics[key] ?? Number.NaN))]))
  }
  const view: Samples = {
    median: (side, key) => medians[side]?.[key] ?? Number.NaN,
    max: (side, key) => Math.max(...okMetrics(samples, side).map((metrics) => metrics[key] ?? Number.NaN)),
    has: (side) => medians[side] !== undefined
  }
  const goals = scenario.goals.map((goal) => {
    if (!view.has("pushpin-ts")) return { label: goal.label, pass: undefined, detail: "no pushpin-ts samples" }
    return { label: goal.label, ...goal.judge(view) }
  })
  return { id: scenario.id, title: scenario.title, sides: scenario.sides, samples, medians, goals }
}

/** 12345.6 → "12 346"; small values keep `digits` decimals. */
export const formatValue = (value: number | undefined, digits: number): string => {
  if (value === undefined || !Number.isFinite(value)) return "n/a"
  const fixed = value.toFixed(digits)
  const [whole = "", fraction] = fixed.split(".")
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, " ")
  return fraction === undefined ? grouped : `${grouped}.${fraction}`
}

export const formatRatio = (ours: number | undefined, theirs: number | undefined): string => {
  if (ours === undefined || theirs === undefined || !Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return ""
  const ratio = ours / theirs
  return `${ratio >= 100 ? ratio.toFixed(0) : ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}×`
}

const verdictText = (pass: boolean | undefined): string => (pass === undefined ? "n/a " : pass ? "PASS" : "FAIL")

interface Table {
  readonly header: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

const scenarioTable = (scenario: Scenario, result: ScenarioResult): Table => {
  const servers = (["pushpin-ts", "pushpin"] as const).filter((side) => scenario.sides.includes(side))
  const withCeiling = scenario.sides.includes("ceiling")
  const withRatio = servers.length === 2
  const header = [
    "metric",
    ...servers.map((side) => SIDE_NAMES[side]),
    ...(withRatio ? ["pushpin-ts / Pushpin"] : []),
    ...(withCeiling ? [sideName(scenario, "ceiling")] : [])
  ]
  const rows = scenario.metrics.map((spec) => {
    const label = spec.unit === "" ? spec.label : `${spec.label} (${spec.unit})`
    const values = servers.map((side) => formatValue(result.medians[side]?.[spec.key], spec.digits))
    const ratio = withRatio ? [spec.ratio ? formatRatio(result.medians["pushpin-ts"]?.[spec.key], result.medians.pushpin?.[spec.key]) : ""] : []
    const ceiling = withCeiling ? [formatValue(result.medians.ceiling?.[spec.key], spec.digits)] : []
    return [label, ...values, ...ratio, ...ceiling]
  })
  return { header, rows }
}

const renderConsoleTable = (table: Table): string => {
  const all = [table.header, ...table.rows]
  const widths = table.header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("   ")
  return [line(table.header), ...table.rows.map(line)].map((text) => `  ${text}`).join("\n")
}

const renderMarkdownTable = (table: Table): string => {
  const line = (row: ReadonlyArray<string>) => `| ${row.join(" | ")} |`
  const rule = `|${table.header.map((_, column) => (column === 0 ? "---" : "---:")).join("|")}|`
  return [line(table.header), rule, ...table.rows.map(line)].join("\n")
}

const failedSamples = (scenario: Scenario, result: ScenarioResult): Array<string> =>
  result.samples
    .filter((sample) => sample.error !== undefined)
    .map((sample) => `${sideName(scenario, sample.side)} #${sample.repeat + 1}: ${sample.error ?? ""}`)

export const renderScenario = (scenario: Scenario, result: ScenarioResult): string => {
  const counts = scenario.sides
    .map((side) => `${sideName(scenario, side)} ${okMetrics(result.samples, side).length}`)
    .join(", ")
  return [
    `${result.title}   [medians; samples: ${counts}]`,
    renderConsoleTable(scenarioTable(scenario, result)),
    ...result.goals.map((goal) => `  ${verdictText(goal.pass)}  ${goal.label}: ${goal.detail}`),
    ...failedSamples(scenario, result).map((text) => `  sample failed: ${text.split("\n")[0] ?? ""}`)
  ].join("\n")
}

export const renderMarkdown = (scenarios: ReadonlyArray<Scenario>, results: ReadonlyArray<ScenarioResult>): string =>
  results
    .map((result) => {
      const scenario = scenarios.find((candidate) => candidate.id === result.id)
      if (scenario === undefined) return ""
      const goals = result.goals.map((goal) => `- **${verdictText(goal.pass).trim()}** ${goal.label}: ${goal.detail}`)
      return [`**${result.title}**`, "", renderMarkdownTable(scenarioTable(scenario, result)), "", ...goals].join("\n")
    })
    .join("\n\n")
