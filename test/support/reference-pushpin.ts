/**
 * Runs the real Pushpin (Debian 12: pushpin 1.36 + condure + zurl) privately, as the reference
 * oracle for differential tests.
 *
 * Each instance gets its own temp dir with a generated pushpin.conf, routes file, zurl.conf,
 * rundir (all ipc sockets live there) and logdir, and its own free TCP ports. zurl is started
 * separately (with an EMPTY deny list, so local origins work) and the proxy's zurl_* specs are
 * pointed at it. Nothing system-wide (/var/run/pushpin, /var/run/zurl, ports 7999/556x) is used.
 *
 * Don't override the port keys through options: httpPort/publishPort/baseUrl would be wrong.
 *
 * A route `pushpin-reference-readiness.invalid test` is appended to the routes so readiness can
 * be probed without ever touching the caller's origin; it only matches that Host.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { debianPushpinConf, debianZurlConf, privateZurlSpecs, renderIni, withOverrides } from "./debian-config.ts";

export type ReferencePushpinOptions = {
  /** Lines of the routes file, e.g. `* 127.0.0.1:8080` or `* test`. */
  readonly routes: ReadonlyArray<string>;
  /** Extra/overriding keys per pushpin.conf section. */
  readonly global?: Readonly<Record<string, string>>;
  readonly runner?: Readonly<Record<string, string>>;
  readonly proxy?: Readonly<Record<string, string>>;
  readonly handler?: Readonly<Record<string, string>>;
  /** Extra/overriding keys for zurl.conf [General]. */
  readonly zurl?: Readonly<Record<string, string>>;
  /** Startup timeout in ms (default 15 000). */
  readonly startTimeoutMs?: number;
};

export type ReferencePushpin = {
  /** Client HTTP port (condure). */
  readonly httpPort: number;
  /** push_in_http_port: the HTTP publish/control API. */
  readonly publishPort: number;
  /** `http://127.0.0.1:<httpPort>` */
  readonly baseUrl: string;
  /** `http://127.0.0.1:<publishPort>` */
  readonly publishUrl: string;
  /** ZMQ specs of the handler (tcp://127.0.0.1:port). */
  readonly pushInSpec: string;
  readonly pushInSubSpec: string;
  readonly commandSpec: string;
  /** The private temp dir (config, routes, run/, log/). Removed by stop(). */
  readonly dir: string;
  /** All log files (runner, condure, proxy, handler, zurl) concatenated. */
  logs(): Promise<string>;
  /** SIGTERM runner and zurl, SIGKILL after 5 s, make sure every child is gone, remove the dir. */
  stop(): Promise<void>;
};

const READINESS_HOST = "pushpin-reference-readiness.invalid";
const TEST_HANDLER_BODY = "Hello from the Pushpin test handler!";

const INTERNAL_CONF_CANDIDATES = ["/usr/lib/pushpin/internal.conf", "/usr/local/lib/pushpin/internal.conf"];

type Binaries = {
  readonly pushpin: string;
  readonly condure: string;
  readonly zurl: string;
  readonly internalConf: string;
};

const findBinaries = (): Binaries | undefined => {
  const pushpin = Bun.which("pushpin");
  const condure = Bun.which("condure");
  const zurl = Bun.which("zurl");
  const proxy = Bun.which("pushpin-proxy");
  const handler = Bun.which("pushpin-handler");
  const internalConf = INTERNAL_CONF_CANDIDATES.find((p) => existsSync(p));
  if (pushpin === null || condure === null || zurl === null || proxy === null || handler === null) return undefined;
  if (internalConf === undefined) return undefined;
  return { pushpin, condure, zurl, internalConf };
};

export const referencePushpinAvailable = (): boolean => findBinaries() !== undefined;

// ---------------------------------------------------------------------------------------------
// Process bookkeeping, so nothing outlives the test process.

type Live = {
  readonly dir: string;
  readonly runner: ChildProcess;
  readonly zurl: ChildProcess;
};

const live = new Set<Live>();
let exitHookInstalled = false;

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const signal = (pid: number | undefined, sig: NodeJS.Signals): void => {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
};

/** Pids from rundir/*.pid whose command line mentions our private dir (guards against pid reuse). */
const ownedChildPids = (dir: string): Array<number> => {
  const runDir = join(dir, "run");
  let names: Array<string>;
  try {
    names = readdirSync(runDir).filter((n) => n.endsWith(".pid"));
  } catch {
    return [];
  }
  const pids: Array<number> = [];
  for (const name of names) {
    try {
      const pid = Number.parseInt(readFileSync(join(runDir, name), "utf8").trim(), 10);
      if (!Number.isInteger(pid) || pid <= 1) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmdline.includes(dir)) pids.push(pid);
    } catch {
      // file vanished or process gone
    }
  }
  return pids;
};

const TEMP_PREFIX = "pushpin-ref-";

/**
 * `bun test` does not run process "exit" handlers, so a forgotten instance's processes are ended
 * by the parent-death signal but its temp dir stays. Remove such dirs of dead owners on start.
 */
const sweepStaleDirs = (base: string): void => {
  let names: Array<string>;
  try {
    names = readdirSync(base).filter((n) => n.startsWith(TEMP_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(base, name);
    try {
      const owner = Number.parseInt(readFileSync(join(dir, "owner.pid"), "utf8").trim(), 10);
      if (!Number.isInteger(owner) || isAlive(owner)) continue;
      if (ownedChildPids(dir).some(isAlive)) continue;
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // not ours, still being created, or already gone
    }
  }
};

const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const inst of live) {
      const children = ownedChildPids(inst.dir);
      signal(inst.runner.pid, "SIGKILL");
      signal(inst.zurl.pid, "SIGKILL");
      for (const pid of children) signal(pid, "SIGKILL");
      try {
        rmSync(inst.dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
    live.clear();
  });
};

// ---------------------------------------------------------------------------------------------
// Helpers

const freePorts = (count: number): Array<number> => {
  const listeners: Array<{ port: number; stop(closeActiveConnections?: boolean): void }> = [];
  try {
    while (listeners.length < count) {
      listeners.push(Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
    }
    return listeners.map((l) => l.port);
  } finally {
    for (const l of listeners) l.stop(true);
  }
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One raw HTTP/1.1 exchange with Connection: close; resolves with the whole response text. */
const rawRequest = (port: number, request: string, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = [];
    const socket = createConnection({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("timeout"));
    }, timeoutMs);
    socket.on("connect", () => socket.write(request));
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });

/** Like rawRequest, but resolves as soon as the answer contains `until` (for held streams). */
const rawRequestUntil = (port: number, request: string, until: string, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = "";
    const socket = createConnection({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("timeout"));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.on("connect", () => socket.write(request));
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (text.includes(until)) finish();
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", finish);
  });

const readLogs = (dir: string): string => {
  const logDir = join(dir, "log");
  let names: Array<string>;
  try {
    names = readdirSync(logDir).sort();
  } catch {
    return "(no logs)";
  }
  return names
    .map((name) => {
      let text: string;
      try {
        text = readFileSync(join(logDir, name), "utf8");
      } catch {
        text = "(unreadable)";
      }
      return `==> ${name} <==\n${text}`;
    })
    .join("\n");
};

const waitExit = (child: ChildProcess, timeoutMs: number): Promise<boolean> => {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
};

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

// ---------------------------------------------------------------------------------------------

export const startReferencePushpin = async (options: ReferencePushpinOptions): Promise<ReferencePushpin> => {
  const bins = findBinaries();
  if (bins === undefined) throw new Error("reference Pushpin is not installed (pushpin, condure, zurl)");
  installExitHook();

  // ipc socket paths must stay well under the ~107 byte sun_path limit.
  const base = existsSync("/tmp") ? "/tmp" : tmpdir();
  sweepStaleDirs(base);
  const dir = mkdtempSync(join(base, TEMP_PREFIX));
  writeFileSync(join(dir, "owner.pid"), `${process.pid}\n`);
  const runDir = join(dir, "run");
  const logDir = join(dir, "log");
  mkdirSync(runDir);
  mkdirSync(logDir);

  const [httpPort, publishPort, pushInPort, pushInSubPort, commandPort] = freePorts(5);
  if (
    httpPort === undefined ||
    publishPort === undefined ||
    pushInPort === undefined ||
    pushInSubPort === undefined ||
    commandPort === undefined
  ) {
    throw new Error("could not allocate ports");
  }

  const zurlSpecs = privateZurlSpecs(runDir);
  const zurlConf = withOverrides(debianZurlConf(runDir), { General: options.zurl });
  const conf = withOverrides(
    debianPushpinConf(
      { http: httpPort, publish: publishPort, pushIn: pushInPort, pushInSub: pushInSubPort, command: commandPort },
      {
        runDir,
        logDir,
        routesFile: join(dir, "routes"),
        internalConf: bins.internalConf,
        condureBin: bins.condure,
        zurlBin: bins.zurl,
      },
    ),
    { global: options.global, runner: options.runner, proxy: options.proxy, handler: options.handler },
  );

  const confPath = join(dir, "pushpin.conf");
  const zurlConfPath = join(dir, "zurl.conf");
  writeFileSync(confPath, renderIni(conf));
  writeFileSync(zurlConfPath, renderIni(zurlConf));
  writeFileSync(join(dir, "routes"), [...options.routes, `${READINESS_HOST} test`].join("\n") + "\n");

  const setpriv = Bun.which("setpriv");
  const spawnLogged = (argv: ReadonlyArray<string>, logName: string): ChildProcess => {
    const fd = openSync(join(logDir, logName), "a");
    try {
      const [cmd, ...args] = argv;
      if (cmd === undefined) throw new Error("empty argv");
      // With setpriv, runner and zurl get SIGTERM when this process ends without running its exit
      // hook (SIGKILL, crash, and `bun test`, which skips "exit" handlers); the runner then stops
      // condure/proxy/handler itself.
      const child =
        setpriv === null
          ? spawn(cmd, args, { cwd: dir, stdio: ["ignore", fd, fd] })
          : spawn(setpriv, ["--pdeathsig", "TERM", "--", cmd, ...args], { cwd: dir, stdio: ["ignore", fd, fd] });
      // Don't keep the event loop alive: a forgotten instance is cleaned up by the exit hook.
      child.unref();
      return child;
    } finally {
      closeSync(fd);
    }
  };

  const timeoutMs = options.startTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;

  const zurl = spawnLogged([bins.zurl, `--config=${zurlConfPath}`], "zurl.log");
  // Start the runner once zurl has bound its sockets, so the proxy's SUB is subscribed from the start.
  const zurlSockets = [zurlSpecs.in, zurlSpecs.inStream, zurlSpecs.out].map((spec) => spec.slice("ipc://".length));
  while (!zurlSockets.every((path) => existsSync(path)) && !exited(zurl) && Date.now() < deadline) await sleep(5);
  const runner = spawnLogged([bins.pushpin, `--config=${confPath}`], "runner.log");
  const inst: Live = { dir, runner, zurl };
  live.add(inst);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const children = ownedChildPids(dir);
      signal(runner.pid, "SIGTERM");
      signal(zurl.pid, "SIGTERM");
      const [runnerGone, zurlGone] = await Promise.all([waitExit(runner, 5000), waitExit(zurl, 5000)]);
      if (!runnerGone) signal(runner.pid, "SIGKILL");
      if (!zurlGone) signal(zurl.pid, "SIGKILL");
      // The runner stops its children on SIGTERM; make sure, then force.
      const deadline = Date.now() + (runnerGone ? 5000 : 0);
      while (children.some(isAlive) && Date.now() < deadline) await sleep(25);
      for (const pid of children) if (isAlive(pid)) signal(pid, "SIGKILL");
      await Promise.all([waitExit(runner, 2000), waitExit(zurl, 2000)]);
      live.delete(inst);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const fail = async (why: string): Promise<never> => {
    const logs = readLogs(dir);
    await stop();
    throw new Error(`reference Pushpin failed to start: ${why}\n${logs}`);
  };

  let httpReady = false;
  let publishReady = false;
  // The proxy hands GRIP responses to the handler over its "accept" socket, which connects after
  // the HTTP port already answers; until then holds get "Accept service unavailable."
  let acceptReady = false;
  let lastError = "";
  if (!zurlSockets.every((path) => existsSync(path))) await fail("zurl did not bind its sockets");
  while (!(httpReady && publishReady && acceptReady)) {
    if (Date.now() > deadline) await fail(`not ready after ${timeoutMs} ms (${lastError})`);
    if (exited(runner)) await fail(`runner exited (code ${String(runner.exitCode)}, signal ${String(runner.signalCode)})`);
    if (exited(zurl)) await fail(`zurl exited (code ${String(zurl.exitCode)}, signal ${String(zurl.signalCode)})`);
    if (!httpReady) {
      try {
        const res = await rawRequest(
          httpPort,
          `GET / HTTP/1.1\r\nHost: ${READINESS_HOST}\r\nConnection: close\r\n\r\n`,
          1000,
        );
        httpReady = res.startsWith("HTTP/1.1 200") && res.includes(TEST_HANDLER_BODY);
        if (!httpReady) lastError = `http port answered: ${JSON.stringify(res.slice(0, 80))}`;
      } catch (e) {
        lastError = `http port: ${String(e)}`;
      }
    }
    if (!publishReady) {
      try {
        const res = await rawRequest(publishPort, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 1000);
        publishReady = res.startsWith("HTTP/1.1 200");
        if (!publishReady) lastError = `publish port answered: ${JSON.stringify(res.slice(0, 80))}`;
      } catch (e) {
        lastError = `publish port: ${String(e)}`;
      }
    }
    if (httpReady && !acceptReady) {
      try {
        const res = await rawRequestUntil(
          httpPort,
          `GET /stream?channel=pushpin-reference-readiness HTTP/1.1\r\nHost: ${READINESS_HOST}\r\nConnection: close\r\n\r\n`,
          "[stream opened]",
          1000,
        );
        acceptReady = res.includes("[stream opened]");
        if (!acceptReady) lastError = `accept path answered: ${JSON.stringify(res.slice(-80))}`;
      } catch (e) {
        lastError = `accept path: ${String(e)}`;
      }
    }
    if (!(httpReady && publishReady && acceptReady)) await sleep(20);
  }

  return {
    httpPort,
    publishPort,
    baseUrl: `http://127.0.0.1:${httpPort}`,
    publishUrl: `http://127.0.0.1:${publishPort}`,
    pushInSpec: conf.handler?.push_in_spec ?? "",
    pushInSubSpec: conf.handler?.push_in_sub_specs ?? "",
    commandSpec: conf.handler?.command_spec ?? "",
    dir,
    logs: () => Promise.resolve(readLogs(dir)),
    stop,
  };
};
