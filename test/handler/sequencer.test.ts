import { describe, expect, test } from "bun:test"
import type { PublishItem } from "../../src/grip/publish.ts"
import { PARKED_PER_CHANNEL_MAX, Sequencer, type SequencerDropReason, type SequencerOptions } from "../../src/handler/sequencer.ts"

const fakeClock = (start = 1_000_000) => {
  let now = start
  return { now: () => now, add: (ms: number) => (now += ms) }
}

/** `"B<A"` is item B with prev-id A; `"B"` has no prev-id; `"-"` has no id; a `!` suffix sets no-seq. */
const item = (spec: string, channel = "ch"): PublishItem => {
  const noSeq = spec.endsWith("!")
  const [id, prevId] = (noSeq ? spec.slice(0, -1) : spec).split("<")
  return {
    channel,
    ...(id !== undefined && id !== "-" ? { id } : {}),
    ...(prevId !== undefined ? { prevId } : {}),
    noSeq,
    meta: new Map(),
    formats: { httpStream: { action: "send", content: new Uint8Array() } }
  }
}

const label = (i: PublishItem): string => `${i.channel === "ch" ? "" : `${i.channel}:`}${i.id ?? "-"}`

const setup = (options: Partial<Omit<SequencerOptions, "onDeliver" | "onDrop" | "clock">> = {}) => {
  const clock = fakeClock()
  const delivered: Array<string> = []
  const dropped: Array<string> = []
  const sequencer = new Sequencer({
    messageWaitMs: 5000,
    idCacheTtlMs: 60_000,
    ...options,
    clock,
    onDeliver: (i) => delivered.push(label(i)),
    onDrop: (i, reason: SequencerDropReason) => dropped.push(`${label(i)} ${reason}`)
  })
  return { clock, delivered, dropped, sequencer }
}

type Step =
  | { readonly add: string; readonly channel?: string; readonly unsubscribed?: true }
  | { readonly wait: number }

describe("Sequencer", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly options?: Partial<Omit<SequencerOptions, "onDeliver" | "onDrop" | "clock">>
    readonly steps: ReadonlyArray<Step>
    readonly delivered: ReadonlyArray<string>
    readonly dropped?: ReadonlyArray<string>
    readonly lastId?: string
    readonly parked?: number
  }> = [
    {
      name: "in-order items go out at once",
      steps: [{ add: "A" }, { add: "B<A" }, { add: "C<B" }],
      delivered: ["A", "B", "C"],
      lastId: "C"
    },
    {
      name: "a channel with no last id takes the first item whatever its prev-id",
      steps: [{ add: "B<A" }, { add: "C<B" }],
      delivered: ["B", "C"],
      lastId: "C"
    },
    {
      name: "an item without a prev-id goes out at once and resets the sequence",
      steps: [{ add: "A" }, { add: "X" }, { add: "Y<X" }],
      delivered: ["A", "X", "Y"],
      lastId: "Y"
    },
    {
      name: "out-of-order items wait, then the gap fill releases the chain in order",
      steps: [{ add: "A" }, { add: "D<C" }, { add: "C<B" }, { add: "B<A" }],
      delivered: ["A", "B", "C", "D"],
      lastId: "D",
      parked: 0
    },
    {
      name: "a parked item is released after message_wait, not before",
      steps: [{ add: "A" }, { add: "C<B" }, { wait: 4999 }],
      delivered: ["A"],
      lastId: "A",
      parked: 1
    },
    {
      name: "a parked item goes out once message_wait has passed and becomes the last id",
      steps: [{ add: "A" }, { add: "C<B" }, { wait: 5000 }, { add: "D<C" }],
      delivered: ["A", "C", "D"],
      lastId: "D",
      parked: 0
    },
    {
      name: "a timeout releases the chain in order even when its tail was published first",
      steps: [{ add: "A" }, { add: "D<C" }, { wait: 1000 }, { add: "C<B" }, { wait: 4000 }],
      delivered: ["A", "C", "D"],
      lastId: "D",
      parked: 0
    },
    {
      name: "items of different channels are sequenced apart",
      steps: [
        { add: "A", channel: "x" },
        { add: "A", channel: "y" },
        { add: "C<B", channel: "x" },
        { add: "B<A", channel: "y" }
      ],
      delivered: ["x:A", "y:A", "y:B"]
    },
    {
      name: "an id seen within id_cache_ttl is dropped",
      steps: [{ add: "A" }, { wait: 59_999 }, { add: "A" }],
      delivered: ["A"],
      dropped: ["A duplicate"]
    },
    {
      name: "an id is forgotten once id_cache_ttl has passed",
      steps: [{ add: "A" }, { wait: 60_000 }, { add: "A" }],
      delivered: ["A", "A"]
    },
    {
      name: "the same id on another channel is not a duplicate",
      steps: [{ add: "A", channel: "x" }, { add: "A", channel: "y" }],
      delivered: ["x:A", "y:A"]
    },
    {
      name: "id_cache_ttl 0 turns dedupe off",
      options: { idCacheTtlMs: 0 },
      steps: [{ add: "A" }, { add: "A" }],
      delivered: ["A", "A"]
    },
    {
      name: "dedupe also covers no-seq items and parked ones",
      steps: [{ add: "A" }, { add: "N!" }, { add: "N!" }, { add: "C<B" }, { add: "C<B" }],
      delivered: ["A", "N"],
      dropped: ["N duplicate", "C duplicate"],
      parked: 1
    },
    {
      name: "a no-seq item bypasses sequencing and leaves the last id alone",
      steps: [{ add: "A" }, { add: "N<Z!" }, { add: "B<A" }],
      delivered: ["A", "N", "B"],
      lastId: "B"
    },
    {
      name: "an item for a channel without subscribers is delivered unsequenced",
      steps: [{ add: "A" }, { add: "U<Z", unsubscribed: true }],
      delivered: ["A", "U"],
      lastId: "A"
    },
    {
      name: "an item without id clears the last id, so the next item goes out at once",
      steps: [{ add: "A" }, { add: "-" }, { add: "C<B" }],
      delivered: ["A", "-", "C"],
      lastId: "C"
    },
    {
      name: "a second item waiting for the same prev-id is dropped, the first stays",
      steps: [{ add: "A" }, { add: "C<B" }, { add: "X<B" }, { add: "B<A" }],
      delivered: ["A", "B", "C"],
      dropped: ["X duplicate prev-id"]
    },
    {
      name: "parking beyond the per-channel bound drops",
      options: { maxParkedPerChannel: 2 },
      steps: [{ add: "A" }, { add: "C<B" }, { add: "E<D" }, { add: "G<F" }, { add: "A", channel: "other" }, { add: "C<B", channel: "other" }],
      delivered: ["A", "other:A"],
      dropped: ["G too many parked"],
      parked: 3
    },
    {
      name: "parking beyond the total bound drops",
      options: { maxParkedTotal: 1 },
      steps: [{ add: "A", channel: "x" }, { add: "A", channel: "y" }, { add: "C<B", channel: "x" }, { add: "C<B", channel: "y" }],
      delivered: ["x:A", "y:A"],
      dropped: ["y:C too many parked"],
      parked: 1
    },
    {
      name: "a dropped item's id is not remembered, so a resend is not a duplicate",
      options: { maxParkedPerChannel: 1 },
      steps: [{ add: "A" }, { add: "C<B" }, { add: "E<D" }, { add: "B<A" }, { add: "D<C" }, { add: "E<D" }],
      delivered: ["A", "B", "C", "D", "E"],
      dropped: ["E too many parked"]
    }
  ]

  for (const c of cases) {
    test(c.name, () => {
      const { clock, delivered, dropped, sequencer } = setup(c.options)
      for (const step of c.steps) {
        if ("wait" in step) {
          clock.add(step.wait)
          sequencer.advance()
        } else {
          sequencer.add(item(step.add, step.channel), step.unsubscribed !== true)
        }
      }
      expect(delivered).toEqual([...c.delivered])
      expect(dropped).toEqual([...(c.dropped ?? [])])
      if (c.lastId !== undefined) expect(sequencer.lastId("ch")).toBe(c.lastId)
      if (c.parked !== undefined) expect(sequencer.parkedCount).toBe(c.parked)
    })
  }

  test("add reports the outcome and the counters follow", () => {
    const { clock, sequencer } = setup()
    expect(sequencer.add(item("A"))).toBe("delivered")
    expect(sequencer.add(item("C<B"))).toBe("parked")
    expect(sequencer.add(item("E<D"))).toBe("parked")
    expect(sequencer.add(item("A"))).toBe("dropped")
    expect(sequencer.add(item("D<C"))).toBe("parked")
    clock.add(5000)
    sequencer.advance()
    expect(sequencer.stats).toEqual({
      delivered: 4,
      parked: 3,
      releasedInOrder: 2,
      releasedOnTimeout: 1,
      dropped: { duplicate: 1, "duplicate prev-id": 0, "too many parked": 0, unsubscribed: 0 }
    })
  })

  test("the default per-channel bound is Pushpin's 100", () => {
    const { dropped, sequencer } = setup()
    sequencer.add(item("A"))
    for (let n = 0; n <= PARKED_PER_CHANNEL_MAX; n++) sequencer.add(item(`x${n}<p${n}`))
    expect(sequencer.parkedCount).toBe(PARKED_PER_CHANNEL_MAX)
    expect(dropped).toEqual([`x${PARKED_PER_CHANNEL_MAX} too many parked`])
  })

  test("clearChannel drops parked items and forgets the last id", () => {
    const { delivered, dropped, sequencer } = setup()
    sequencer.add(item("A"))
    sequencer.add(item("C<B"))
    sequencer.clearChannel("ch")
    expect(dropped).toEqual(["C unsubscribed"])
    expect(sequencer.lastId("ch")).toBeUndefined()
    expect(sequencer.parkedCount).toBe(0)
    // A new subscriber's first item goes out whatever its prev-id.
    sequencer.add(item("Q<P"))
    expect(delivered).toEqual(["A", "Q"])
  })

  test("forgetLastId and clearLastIds let the next item through", () => {
    const { delivered, sequencer } = setup()
    sequencer.add(item("A", "x"))
    sequencer.add(item("A", "y"))
    sequencer.forgetLastId("x")
    sequencer.add(item("C<B", "x"))
    sequencer.clearLastIds()
    sequencer.add(item("C<B", "y"))
    expect(delivered).toEqual(["x:A", "y:A", "x:C", "y:C"])
  })

  test("advance forgets expired ids, so the id cache does not grow while idle", () => {
    const { clock, sequencer } = setup()
    for (let n = 0; n < 10; n++) sequencer.add(item(`i${n}`))
    expect(sequencer.cachedIdCount).toBe(10)
    clock.add(60_000)
    sequencer.advance()
    expect(sequencer.cachedIdCount).toBe(0)
  })

  test("the last-id table and the id cache are bounded, oldest first", () => {
    const { sequencer } = setup({ maxLastIds: 2, maxCachedIds: 2 })
    sequencer.add(item("A", "x"))
    sequencer.add(item("A", "y"))
    sequencer.add(item("B<A", "x"))
    sequencer.add(item("A", "z"))
    // y was set least recently.
    expect([sequencer.lastId("x"), sequencer.lastId("y"), sequencer.lastId("z")]).toEqual(["B", undefined, "A"])
    expect(sequencer.cachedIdCount).toBe(2)
  })

  test("onDeliver may publish again from inside a chain release", () => {
    const clock = fakeClock()
    const delivered: Array<string> = []
    const sequencer: Sequencer = new Sequencer({
      messageWaitMs: 5000,
      idCacheTtlMs: 0,
      clock,
      onDeliver: (i) => {
        delivered.push(label(i))
        if (i.id === "C") sequencer.add(item("D<C"))
      }
    })
    sequencer.add(item("A"))
    sequencer.add(item("E<D"))
    sequencer.add(item("C<B"))
    sequencer.add(item("B<A"))
    expect(delivered).toEqual(["A", "B", "C", "D", "E"])
    expect(sequencer.parkedCount).toBe(0)
  })
})
