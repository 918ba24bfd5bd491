import { describe, expect, test } from "bun:test"
import { isValidMetricPrefix, renderPrometheus } from "../../src/metrics/prometheus.ts"
import { parsePrometheus } from "../support/prometheus.ts"

describe("renderPrometheus", () => {
  test("writes HELP, TYPE and samples with the prefix, as Pushpin does", () => {
    const text = renderPrometheus([{ name: "request_received", type: "counter", help: "Number of requests received", samples: [{ value: 3 }] }], "pushpin_")
    expect(text).toBe("# HELP pushpin_request_received Number of requests received\n# TYPE pushpin_request_received counter\npushpin_request_received 3\n")
  })

  test("labels are escaped and round-trip through a strict parser", () => {
    const text = renderPrometheus(
      [{ name: "drops", type: "counter", help: "a\\b\nc", samples: [{ labels: { reason: 'say "hi"\\' }, value: 1 }, { labels: { reason: "x" }, value: 2.5 }] }],
      ""
    )
    expect(text).toContain("# HELP drops a\\\\b\\nc\n")
    const parsed = parsePrometheus(text)
    expect(parsed.value("drops", { reason: 'say \\"hi\\"\\\\' })).toBe(1)
    expect(parsed.value("drops", { reason: "x" })).toBe(2.5)
  })

  test("special values and invalid names", () => {
    expect(renderPrometheus([{ name: "g", type: "gauge", help: "h", samples: [{ value: Infinity }, { labels: { a: "1" }, value: NaN }] }], "")).toContain("g +Inf\ng{a=\"1\"} NaN\n")
    expect(() => renderPrometheus([{ name: "ok", type: "gauge", help: "h", samples: [] }], "bad-prefix")).toThrow("invalid Prometheus metric name")
    expect(() => renderPrometheus([{ name: "ok", type: "gauge", help: "h", samples: [{ labels: { "bad-label": "x" }, value: 1 }] }], "")).toThrow("invalid Prometheus label name")
  })

  test("prefix validation", () => {
    expect(isValidMetricPrefix("")).toBe(true)
    expect(isValidMetricPrefix("pushpin_")).toBe(true)
    expect(isValidMetricPrefix("my:app_")).toBe(true)
    expect(isValidMetricPrefix("9lives_")).toBe(false)
    expect(isValidMetricPrefix("my-app_")).toBe(false)
  })
})
