import { describe, expect, test } from "bun:test"
import { MEMORY_RELEASE_MIN_DROP, MemoryReleasePolicy } from "../../src/connmgr/memory-release.ts"

describe("MemoryReleasePolicy", () => {
  test("asks for a collection once after a large drop from the peak, not on small dips", () => {
    const policy = new MemoryReleasePolicy()
    expect([0, 500, 10_000].map((count) => policy.observe(count))).toEqual([false, false, false])
    expect(policy.observe(9_500)).toBe(false) // a dip
    expect(policy.observe(6_000)).toBe(false) // more than half still open
    expect(policy.observe(10)).toBe(true)
    expect(policy.observe(0)).toBe(false) // the peak restarted from 10
  })

  test("small servers never pay for a full collection", () => {
    const policy = new MemoryReleasePolicy()
    policy.observe(MEMORY_RELEASE_MIN_DROP - 1)
    expect(policy.observe(0)).toBe(false)
    policy.observe(MEMORY_RELEASE_MIN_DROP)
    expect(policy.observe(0)).toBe(true)
  })
})
