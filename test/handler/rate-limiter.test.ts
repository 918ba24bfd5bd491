import { describe, expect, test } from "bun:test"
import { batchFor, type OfferOutcome, RateLimiter, type RateLimiterOptions } from "../../src/handler/rate-limiter.ts"

const fakeClock = (start = 1_000_000) => {
  let now = start
  return { now: () => now, add: (ms: number) => (now += ms) }
}

const setup = (options: Omit<RateLimiterOptions, "clock"> = {}) => {
  const clock = fakeClock()
  const ran: Array<string> = []
  const limiter = new RateLimiter({ ...options, clock })
  const offer = (key: string, name: string, weight = 1): OfferOutcome => limiter.offer(key, () => void ran.push(name), weight)
  /** Moves the clock in steps of `stepMs`, ticking after each, and returns what ran in each step. */
  const tick = (steps: number, stepMs: number): Array<Array<string>> => {
    const out: Array<Array<string>> = []
    for (let n = 0; n < steps; n++) {
      const before = ran.length
      clock.add(stepMs)
      limiter.advance()
      out.push(ran.slice(before))
    }
    return out
  }
  return { clock, ran, limiter, offer, tick }
}

describe("RateLimiter", () => {
  test.each([
    [2500, 25, 63],
    [1000, 25, 25],
    [40, 25, 1],
    [39, 25, 1],
    [10, 100, 1],
    [1, 1000, 1]
  ])("Pushpin's batch for %d/s is %d ms × %d", (rate, intervalMs, size) => {
    expect(batchFor(rate)).toEqual([intervalMs, size])
  })

  test("unlimited: every action runs at once and nothing queues", () => {
    const { ran, limiter, offer } = setup()
    const outcomes = Array.from({ length: 1000 }, (_, n) => offer("r", `a${n}`))
    expect(new Set(outcomes)).toEqual(new Set(["sent"]))
    expect(ran.length).toBe(1000)
    expect(limiter.queuedCount).toBe(0)
  })

  test("under the rate an action runs inside offer", () => {
    // 1000/s: batches of 25 every 25 ms.
    const { ran, offer, tick } = setup({ rate: 1000 })
    expect(offer("r", "a")).toBe("sent")
    expect(ran).toEqual(["a"])
    tick(1, 25)
    for (let n = 0; n < 25; n++) expect(offer("r", `b${n}`)).toBe("sent")
  })

  test("over the rate actions queue, then drain over time in order", () => {
    // 10/s: one action per 100 ms.
    const { ran, offer, tick } = setup({ rate: 10, tickMs: 100 })
    expect(["a", "b", "c", "d"].map((name) => offer("r", name))).toEqual(["sent", "queued", "queued", "queued"])
    expect(ran).toEqual(["a"])
    expect(tick(1, 50)).toEqual([[]])
    expect(tick(4, 50)).toEqual([["b"], [], ["c"], []])
    expect(tick(2, 100)).toEqual([["d"], []])
  })

  test("a new action waits behind queued ones even when credit has come back", () => {
    const { ran, offer, clock, limiter } = setup({ rate: 10, tickMs: 100 })
    offer("r", "a")
    offer("r", "b")
    clock.add(100)
    expect(offer("r", "c")).toBe("queued")
    limiter.advance()
    expect(ran).toEqual(["a", "b"])
  })

  test("keys take turns", () => {
    const { ran, offer, tick } = setup({ rate: 10, tickMs: 100 })
    offer("r1", "a1")
    offer("r1", "a2")
    offer("r1", "a3")
    offer("r2", "b1")
    offer("r2", "b2")
    offer("r3", "c1")
    tick(6, 100)
    expect(ran).toEqual(["a1", "a2", "b1", "c1", "a3", "b2"])
  })

  test("the full rate is kept with a tick slower than Pushpin's batches", () => {
    const { ran, offer, tick } = setup({ rate: 1000, tickMs: 100 })
    for (let n = 0; n < 1000; n++) offer("r", `a${n}`)
    expect(ran.length).toBe(100)
    expect(tick(9, 100).map((step) => step.length)).toEqual([100, 100, 100, 100, 100, 100, 100, 100, 100])
    expect(ran).toEqual(Array.from({ length: 1000 }, (_, n) => `a${n}`))
  })

  test("idle time does not bank more than one batch of credit", () => {
    const { ran, offer, clock } = setup({ rate: 10, tickMs: 100 })
    clock.add(10_000)
    expect(["a", "b"].map((name) => offer("r", name))).toEqual(["sent", "queued"])
    expect(ran).toEqual(["a"])
  })

  test("message_hwm drops past the mark, per key", () => {
    const { ran, limiter, offer, tick } = setup({ rate: 10, tickMs: 100, hwm: 2 })
    expect(["a", "b", "c", "d"].map((name) => offer("r1", name))).toEqual(["sent", "queued", "queued", "dropped"])
    expect(offer("r2", "x")).toBe("queued")
    expect(limiter.queuedWeight("r1")).toBe(2)
    expect(limiter.stats.dropped.hwm).toBe(1)
    tick(10, 100)
    expect(ran).toEqual(["a", "b", "x", "c"])
    expect(limiter.queuedCount).toBe(0)
  })

  test("message_hwm counts weight", () => {
    const { offer } = setup({ rate: 10, tickMs: 100, hwm: 5 })
    offer("r", "a")
    expect(offer("r", "b", 3)).toBe("queued")
    expect(offer("r", "c", 3)).toBe("dropped")
    expect(offer("r", "d", 2)).toBe("queued")
  })

  test("without a rate, message_hwm only drops an action heavier than the mark", () => {
    const { offer } = setup({ hwm: 5 })
    expect(offer("r", "a", 5)).toBe("sent")
    expect(offer("r", "b", 6)).toBe("dropped")
  })

  test("a heavy action runs on any credit and later ones wait out its weight", () => {
    const { ran, offer, tick } = setup({ rate: 10, tickMs: 100 })
    expect(offer("r", "big", 3)).toBe("sent")
    expect(offer("r", "next")).toBe("queued")
    expect(tick(4, 100)).toEqual([[], [], ["next"], []])
    expect(ran).toEqual(["big", "next"])
  })

  test("an action that delivers nothing costs no rate", () => {
    const { ran, limiter, offer } = setup({ rate: 10, tickMs: 100 })
    expect(limiter.offer("r", () => false)).toBe("sent")
    expect(offer("r", "a")).toBe("sent")
    expect(ran).toEqual(["a"])
  })

  test("the total queue is bounded", () => {
    const { limiter, offer } = setup({ rate: 10, tickMs: 100, maxQueuedTotal: 2 })
    expect(["a", "b", "c", "d"].map((name) => offer(`r${name}`, name))).toEqual(["sent", "queued", "queued", "dropped"])
    expect(limiter.stats).toEqual({ sent: 1, queued: 2, drained: 0, dropped: { hwm: 0, "queue full": 1 } })
  })

  test("an action may offer again while being drained", () => {
    const { clock, ran, limiter } = setup({ rate: 10, tickMs: 100 })
    limiter.offer("r", () => void ran.push("a"))
    limiter.offer("r", () => {
      ran.push("b")
      limiter.offer("r", () => void ran.push("c"))
    })
    clock.add(100)
    limiter.advance()
    expect(ran).toEqual(["a", "b"])
    expect(limiter.queuedCount).toBe(1)
    clock.add(100)
    limiter.advance()
    expect(ran).toEqual(["a", "b", "c"])
  })

  test("a long queue drains in order (queue compaction keeps the order)", () => {
    const { ran, offer, tick } = setup({ rate: 1000, tickMs: 1000 })
    const count = 5000
    for (let n = 0; n < count; n++) offer(n % 2 === 0 ? "even" : "odd", `a${n}`)
    tick(5, 1000)
    expect(ran.length).toBe(count)
    expect(ran.filter((name) => Number(name.slice(1)) % 2 === 0)).toEqual(
      Array.from({ length: count / 2 }, (_, n) => `a${n * 2}`)
    )
    expect(ran.filter((name) => Number(name.slice(1)) % 2 === 1)).toEqual(
      Array.from({ length: count / 2 }, (_, n) => `a${n * 2 + 1}`)
    )
  })
})
