import { describe, expect, test } from "bun:test"
import { OriginGate, type GateOutcome } from "../../src/proxy/origin-gate.ts"

const admitted = (outcome: GateOutcome | Promise<GateOutcome>): outcome is { _tag: "Admitted"; release: () => void } =>
  !(outcome instanceof Promise) && outcome._tag === "Admitted"

describe("OriginGate", () => {
  test("admits up to maxActive at once, queues up to maxWaiting, refuses the rest immediately", async () => {
    const gate = new OriginGate({ maxActive: 2, maxWaiting: 1 })
    const a = gate.acquire()
    const b = gate.acquire()
    expect(admitted(a) && admitted(b)).toBe(true)
    const waiting = gate.acquire()
    expect(waiting).toBeInstanceOf(Promise)
    expect(gate.acquire()).toEqual({ _tag: "Full" })
    expect(gate.waitingCount).toBe(1)
    if (!admitted(a)) throw new Error("unreachable")
    a.release()
    const granted = await waiting
    expect(granted._tag).toBe("Admitted")
    expect(gate.activeCount).toBe(2)
    expect(gate.waitingCount).toBe(0)
  })

  test("waiters are served in order and a double release frees only one slot", async () => {
    const gate = new OriginGate({ maxActive: 1, maxWaiting: 10 })
    const first = gate.acquire()
    if (!admitted(first)) throw new Error("first should be admitted")
    const order: Array<number> = []
    const waiters = [1, 2, 3].map((n) =>
      Promise.resolve(gate.acquire()).then((outcome) => {
        order.push(n)
        return outcome
      })
    )
    first.release()
    first.release()
    const second = await waiters[0]
    expect(gate.activeCount).toBe(1)
    if (second?._tag !== "Admitted") throw new Error("second should be admitted")
    second.release()
    const third = await waiters[1]
    if (third?._tag !== "Admitted") throw new Error("third should be admitted")
    third.release()
    const fourth = await waiters[2]
    if (fourth?._tag !== "Admitted") throw new Error("fourth should be admitted")
    fourth.release()
    expect(order).toEqual([1, 2, 3])
    expect(gate.activeCount).toBe(0)
  })

  test("an aborted waiter leaves the line and never takes a slot", async () => {
    const gate = new OriginGate({ maxActive: 1, maxWaiting: 5 })
    const first = gate.acquire()
    if (!admitted(first)) throw new Error("first should be admitted")
    const controller = new AbortController()
    const abandoned = gate.acquire(controller.signal)
    controller.abort()
    expect(await abandoned).toEqual({ _tag: "Full" })
    expect(gate.waitingCount).toBe(0)
    first.release()
    expect(gate.activeCount).toBe(0)
  })
})
