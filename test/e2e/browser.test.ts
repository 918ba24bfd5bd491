/**
 * A real browser: headless Chromium loads a page through pushpin-ts whose EventSource receives
 * published events. Runs whenever Debian's chromium is installed (CI installs it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import { chromium, type Browser } from "playwright-core"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"

const CHROMIUM = "/usr/bin/chromium"

const PAGE = `<!doctype html>
<html><body><ul id="events"></ul><script>
  const list = document.getElementById("events")
  window.opened = false
  const source = new EventSource("/events?channel=browser")
  source.onopen = () => { window.opened = true }
  source.addEventListener("news", (event) => {
    const item = document.createElement("li")
    item.textContent = event.data
    list.appendChild(item)
  })
</script></body></html>`

describe.skipIf(!existsSync(CHROMIUM))("in a real browser", () => {
  let origin: TestOrigin
  let proxy: RunningPushpinTs
  let browser: Browser

  beforeAll(async () => {
    origin = startOrigin((request) => {
      const url = new URL(request.url)
      if (url.pathname === "/events") {
        return new Response(":opened\n\n", {
          headers: {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "grip-hold": "stream",
            "grip-channel": url.searchParams.get("channel") ?? "browser",
            "grip-keep-alive": ":\\n\\n; format=cstring; timeout=20"
          }
        })
      }
      return new Response(PAGE, { headers: { "content-type": "text/html" } })
    })
    proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port}`] })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // The machine has no network beyond loopback: keep Chromium from trying to reach out.
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    })
  })

  afterAll(async () => {
    await browser?.close()
    await proxy?.stop()
    await origin?.stop()
  })

  test("EventSource receives published events through pushpin-ts", async () => {
    const page = await browser.newPage()
    await page.goto(`${proxy.baseUrl}/`)
    await page.waitForFunction(() => (window as unknown as { opened: boolean }).opened === true, undefined, { timeout: 10_000 })
    for (const text of ["first", "second"]) {
      const response = await fetch(`${proxy.publishUrl}/publish/`, {
        method: "POST",
        body: JSON.stringify({ items: [{ channel: "browser", formats: { "http-stream": { content: `event: news\ndata: ${text}\n\n` } } }] })
      })
      expect(response.status).toBe(200)
    }
    await page.waitForFunction(() => document.querySelectorAll("#events li").length === 2, undefined, { timeout: 10_000 })
    expect(await page.$$eval("#events li", (items) => items.map((item) => item.textContent))).toEqual(["first", "second"])
    await page.close()
  })
})
