import { describe, expect, test } from "bun:test"
import { TimerWheel } from "../../src/handler/timer-wheel.ts"

const fakeClock = (start = 1_000_000) => {
  let now = start
  return { now: () => now, set: (ms: number) => (now = ms), add: (ms: number) => (now += ms) }
}

describe("TimerWheel", () => {
  test("fires entries on the first tick at or after their deadline, once", () => {
    const clock = fakeClock()
    const wheel = new TimerWheel(clock, 100)
    const fired: Array<string> = []
    const a = wheel.makeEntry(() => fired.push("a"))
    const b = wheel.makeEntry(() => fired.push("b"))
    wheel.schedule(a, 250)
    wheel.schedule(b, 1000)
    expect(wheel.size).toBe(2)
    clock.add(200)
    wheel.advance()
    expect(fired).toEqual([])
    clock.add(100)
    wheel.advance()
    expect(fired).toEqual(["a"])
    clock.add(5000)
    wheel.advance()
    wheel.advance()
    expect(fired).toEqual(["a", "b"])
    expect(wheel.size).toBe(0)
  })

  test("rescheduling moves an entry; cancelling removes it", () => {
    const clock = fakeClock()
    const wheel = new TimerWheel(clock, 100)
    let count = 0
    const entry = wheel.makeEntry(() => count++)
    wheel.schedule(entry, 100)
    wheel.schedule(entry, 1000)
    expect(wheel.size).toBe(1)
    clock.add(500)
    wheel.advance()
    expect(count).toBe(0)
    wheel.cancel(entry)
    clock.add(1000)
    wheel.advance()
    expect(count).toBe(0)
    expect(wheel.size).toBe(0)
  })

  test("an entry rescheduled from inside its own fire runs again later, and zero delay waits one tick", () => {
    const clock = fakeClock()
    const wheel = new TimerWheel(clock, 100)
    let count = 0
    const entry = wheel.makeEntry(() => {
      count++
      if (count < 3) wheel.schedule(entry, 0)
    })
    wheel.schedule(entry, 0)
    wheel.advance()
    expect(count).toBe(0)
    for (let i = 0; i < 5; i++) {
      clock.add(100)
      wheel.advance()
    }
    expect(count).toBe(3)
  })
})
