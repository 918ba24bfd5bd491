import { describe, expect, test } from "bun:test"
import { median, quantile } from "../../bench/stats.ts"

describe("stats", () => {
  test("quantile is nearest-rank", () => {
    const values = Array.from({ length: 100 }, (_, index) => 100 - index)
    expect(quantile(values, 0.5)).toBe(50)
    expect(quantile(values, 0.99)).toBe(99)
    expect(quantile(values, 1)).toBe(100)
    expect(quantile(values, 0)).toBe(1)
    expect(quantile([], 0.5)).toBeNaN()
  })

  test("median of a few samples ignores failed (NaN) ones", () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([5, Number.NaN, 1])).toBe(3)
    expect(median([])).toBeNaN()
  })
})
