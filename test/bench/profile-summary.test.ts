import { expect, test } from "bun:test"
import { type CpuProfile, summarizeProfile } from "../../bench/profile-summary.ts"

const frame = (functionName: string, url = "/repo/src/proxy/proxy.ts", lineNumber = 9) => ({ functionName, url, lineNumber })

// (root) → handle → log → appendFileSync, and (root) → (idle)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)", "", -1), children: [2, 5] },
    { id: 2, callFrame: frame("handle"), children: [3] },
    { id: 3, callFrame: frame("write", "/repo/src/log/log.ts", 40), children: [4] },
    { id: 4, callFrame: frame("appendFileSync", "", -1) },
    { id: 5, callFrame: frame("(idle)", "", -1) }
  ],
  samples: [4, 4, 4, 2, 5, 5, 5, 5, 5, 5]
}

test("shares are of busy samples, self and inclusive", () => {
  const summary = summarizeProfile(profile, 10)
  expect(summary.samples).toBe(4)
  expect(summary.self).toEqual([
    { name: "appendFileSync", samples: 3, percent: 75 },
    { name: "handle src/proxy/proxy.ts:10", samples: 1, percent: 25 }
  ])
  expect(summary.inclusive.map((share) => [share.name, share.samples])).toEqual([
    ["handle src/proxy/proxy.ts:10", 4],
    ["appendFileSync", 3],
    ["write src/log/log.ts:41", 3]
  ])
})
