import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { referencePushpinAvailable, startReferencePushpin, type ReferencePushpin } from "../support/reference-pushpin.ts";

type Seen = { method: string; url: string; headers: Array<[string, string]>; body: string };

describe.skipIf(!referencePushpinAvailable())("reference Pushpin (real pushpin 1.36 + condure + zurl)", () => {
  const seen: Array<Seen> = [];
  let origin: ReturnType<typeof Bun.serve> | undefined;
  let proxied: ReferencePushpin | undefined;
  let testRoute: ReferencePushpin | undefined;

  beforeAll(async () => {
    origin = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        seen.push({ method: req.method, url: req.url, headers: [...req.headers], body: await req.text() });
        return new Response("hello from origin\n", { headers: { "content-type": "text/plain", "x-origin": "1" } });
      },
    });
    // Two instances at once: they must not share ports, rundirs or zurl.
    [proxied, testRoute] = await Promise.all([
      startReferencePushpin({ routes: [`* 127.0.0.1:${String(origin.port)}`] }),
      startReferencePushpin({ routes: ["* test"] }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([proxied?.stop(), testRoute?.stop()]);
    await origin?.stop(true);
  });

  const must = <T,>(value: T | undefined): T => {
    if (value === undefined) throw new Error("not started");
    return value;
  };

  test("a GET through a `*` route reaches the origin", async () => {
    const pp = must(proxied);
    const res = await fetch(`${pp.baseUrl}/some/path?a=1&b=two`, {
      headers: { "Grip-Foo": "x", "X-Client": "yes", "Accept-Encoding": "gzip" },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("hello from origin\n");
    expect(res.headers.get("x-origin")).toBe("1");

    expect(seen.length).toBe(1);
    const req = seen[0];
    if (req === undefined) throw new Error("origin saw nothing");
    console.log("origin saw:", req.method, req.url, "\n" + req.headers.map(([k, v]) => `  ${k}: ${v}`).join("\n"));
    const headers = new Map(req.headers);
    expect(req.method).toBe("GET");
    expect(new URL(req.url).pathname + new URL(req.url).search).toBe("/some/path?a=1&b=two");
    expect(headers.get("host")).toBe(`127.0.0.1:${String(pp.httpPort)}`);
    expect(headers.get("x-client")).toBe("yes");
    // Pushpin strips client Grip-* headers and signs the request (Debian default sig_key=changeme).
    expect(headers.has("grip-foo")).toBe(false);
    const sig = headers.get("grip-sig") ?? "";
    const claims: unknown = JSON.parse(Buffer.from(sig.split(".")[1] ?? "", "base64url").toString("utf8"));
    expect(claims).toMatchObject({ iss: "pushpin" });
    expect(headers.get("grip-feature")).toContain("status");
    // zurl (curl) replaces the client's Accept-Encoding with its own list.
    expect(headers.get("accept-encoding")).not.toBe("gzip");
  });

  test("the built-in `* test` route answers GET /", async () => {
    const pp = must(testRoute);
    const res = await fetch(`${pp.baseUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await res.text()).toBe("Hello from the Pushpin test handler!\n");
    const missing = await fetch(`${pp.baseUrl}/nonexistent`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe("no such test resource\n");
  });

  test("a publish to the publish port answers 200 Published", async () => {
    const pp = must(proxied);
    const res = await fetch(`${pp.publishUrl}/publish/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ items: [{ channel: "test", formats: { "http-stream": { content: "hi\n" } } }] }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("Published\n");
  });

  test("logs include the proxy's access log line", async () => {
    const pp = must(proxied);
    // The proxy writes the line right after responding; allow it a moment to reach the file.
    let logs = await pp.logs();
    for (let i = 0; i < 50 && !logs.includes("/some/path?a=1&b=two -> "); i++) {
      await Bun.sleep(20);
      logs = await pp.logs();
    }
    expect(logs).toMatch(/\[INFO\] \S+ \S+ GET http:\/\/127\.0\.0\.1:\d+\/some\/path\?a=1&b=two -> 127\.0\.0\.1:\d+ code=200 18/);
  });

  test("stop() removes every process and the temp dir", async () => {
    const pp = await startReferencePushpin({ routes: ["* test"] });
    expect((await fetch(`${pp.baseUrl}/`)).status).toBe(200);
    await pp.stop();
    expect(existsSync(pp.dir)).toBe(false);
    const ps = Bun.spawnSync(["ps", "-eo", "stat=,args="]).stdout.toString();
    const leftovers = ps.split("\n").filter((line) => line.includes(pp.dir) && !line.trimStart().startsWith("Z"));
    expect(leftovers).toEqual([]);
    await pp.stop(); // idempotent
  });
});
