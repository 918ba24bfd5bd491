/**
 * A real browser: headless Chromium loads a page through pushpin-ts whose EventSource and
 * WebSocket both receive what is published. Runs whenever Debian's chromium is installed (CI
 * installs it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import { chromium, type Browser } from "playwright-core"
import { subscribed } from "../support/grip.ts"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { startWsOrigin, type WsOrigin } from "../support/ws.ts"

const CHROMIUM = "/usr/bin/chromium"

const PAGE = `<!doctype html>
<html><body><ul id="events"></ul><ul id="socket"></ul><script>
  const add = (listId, text) => {
    const item = document.createElement("li")
    item.textContent = text
    document.getElementById(listId).appendChild(item)
  }
  window.opened = false
  window.socketReady = false
  const source = new EventSource("/events?channel=browser")
  source.onopen = () => { window.opened = true }
  source.addEventListener("news", (event) => add("events", event.data))
  const socket = new WebSocket("ws://" + location.host + "/socket?channel=browser")
  socket.onmessage = (event) => {
    if (event.data === "welcome") window.socketReady = true
    else add("socket", event.data)
  }
</script></body></html>`

describe.skipIf(!existsSync(CHROMIUM))("in a real browser", () => {
  let origin: TestOrigin
  let socketOrigin: WsOrigin
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
    // A GRIP WebSocket origin: it subscribes each connection to its ?channel= and says welcome.
    socketOrigin = await startWsOrigin({
      handshake: () => ({ "sec-websocket-extensions": "grip" }),
      onOpen: (connection) => {
        const channel = new URL(connection.path, "http://x").searchParams.get("channel") ?? "browser"
        connection.socket.send(`c:${JSON.stringify({ type: "subscribe", channel })}`)
        connection.socket.send("m:welcome")
      }
    })
    proxy = await startPushpinTs({
      args: ["--route", `*,path_beg=/socket 127.0.0.1:${socketOrigin.port}`, "--route", `* 127.0.0.1:${origin.port}`]
    })
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
    await socketOrigin?.stop()
  })

  test("EventSource and WebSocket receive published messages through pushpin-ts", async () => {
    const page = await browser.newPage()
    await page.goto(`${proxy.baseUrl}/`)
    await page.waitForFunction(() => (window as unknown as { opened: boolean }).opened === true, undefined, { timeout: 10_000 })
    await page.waitForFunction(() => (window as unknown as { socketReady: boolean }).socketReady === true, undefined, { timeout: 10_000 })
    await subscribed(proxy, "browser", 2)
    for (const text of ["first", "second"]) {
      const response = await fetch(`${proxy.publishUrl}/publish/`, {
        method: "POST",
        body: JSON.stringify({
          items: [{
            channel: "browser",
            formats: { "http-stream": { content: `event: news\ndata: ${text}\n\n` }, "ws-message": { content: text } }
          }]
        })
      })
      expect(response.status).toBe(200)
    }
    await page.waitForFunction(() => document.querySelectorAll("#events li").length === 2, undefined, { timeout: 10_000 })
    await page.waitForFunction(() => document.querySelectorAll("#socket li").length === 2, undefined, { timeout: 10_000 })
    expect(await page.$$eval("#events li", (items) => items.map((item) => item.textContent))).toEqual(["first", "second"])
    expect(await page.$$eval("#socket li", (items) => items.map((item) => item.textContent))).toEqual(["first", "second"])
    await page.close()
  })
})
