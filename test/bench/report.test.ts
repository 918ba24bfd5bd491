import { describe, expect, test } from "bun:test"
import { formatRatio, formatValue, renderScenario, type SampleRecord, summarize } from "../../bench/report.ts"
import { atLeastTimes, metric, type Scenario } from "../../bench/scenario.ts"

const scenario: Scenario = {
  id: "example",
  title: "example",
  description: "",
  sides: ["pushpin-ts", "pushpin", "ceiling"],
  ceilingLabel: "origin direct",
  metrics: [metric("rps", "requests/s", "", 0)],
  goals: [atLeastTimes("rps", "≥ 10× Pushpin", 10), atLeastTimes("rps", "≥ 40% of the ceiling", 0.4, "ceiling")],
  timeoutMs: () => 1000,
  measure: () => Promise.resolve({})
}

const sample = (side: SampleRecord["side"], repeat: number, rps: number): SampleRecord => ({ side, repeat, seconds: 1, metrics: { rps } })

describe("summarize", () => {
  test("medians per side, and goals judged on them", () => {
    const samples = [
      sample("pushpin-ts", 0, 20_000),
      sample("pushpin-ts", 1, 30_000),
      sample("pushpin-ts", 2, 25_000),
      sample("pushpin", 0, 2_000),
      sample("pushpin", 1, 3_000),
      sample("pushpin", 2, 2_500),
      sample("ceiling", 0, 100_000),
      { side: "ceiling", repeat: 1, seconds: 1, error: "timed out" }
    ] satisfies Array<SampleRecord>
    const result = summarize(scenario, samples)
    expect(result.medians["pushpin-ts"]?.rps).toBe(25_000)
    expect(result.medians.pushpin?.rps).toBe(2_500)
    expect(result.medians.ceiling?.rps).toBe(100_000)
    expect(result.goals.map((goal) => goal.pass)).toEqual([true, false])
    const text = renderScenario(scenario, result)
    expect(text).toContain("PASS  ≥ 10× Pushpin: 10.00×")
    expect(text).toContain("FAIL  ≥ 40% of the ceiling: 0.25×")
    expect(text).toContain("sample failed: origin direct #2: timed out")
  })

  test("goals that need Pushpin are n/a without its samples", () => {
    const result = summarize({ ...scenario, sides: ["pushpin-ts"] }, [sample("pushpin-ts", 0, 1)])
    expect(result.goals[0]?.pass).toBeUndefined()
  })
})

describe("formatting", () => {
  test.each([
    [12345.6, 0, "12 346"],
    [1234567, 1, "1 234 567.0"],
    [0.125, 2, "0.13"],
    [Number.NaN, 1, "n/a"]
  ] as const)("formatValue(%p, %p) = %p", (value, digits, text) => {
    expect(formatValue(value, digits)).toBe(text)
  })

  test("formatRatio", () => {
    expect(formatRatio(25_000, 2_500)).toBe("10.0×")
    expect(formatRatio(1, 4)).toBe("0.25×")
    expect(formatRatio(1_000, 2)).toBe("500×")
    expect(formatRatio(1, 0)).toBe("")
    expect(formatRatio(undefined, 1)).toBe("")
  })
})
