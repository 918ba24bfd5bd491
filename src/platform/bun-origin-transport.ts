/**
 * The byte stream under an origin WebSocket (`OriginTransport` in server.ts): TCP, or TLS,
 * through `Bun.connect`.
 *
 * Why not node:net / node:tls: in the WebSocket echo benchmark their stream machinery (a
 * Writable's buffering, a Readable's chunk queue and events) took about half the proxy's busy
 * CPU on top of the system calls themselves; Bun's socket hands each read to one callback and
 * each write straight to the kernel.
 *
 * Bun's `write` writes what the kernel takes now and returns that count; it keeps nothing. So
 * this class keeps the rest, in order, writes it when Bun reports `drain`, and only then tells
 * its listener (`onDrain`), which is the signal the proxy waits for before reading from the
 * client again (see `bufferedAmount`).
 */
import type { Socket, SocketHandler } from "bun"
import type { OriginTransport, OriginTransportListener, OriginTransportOptions } from "./server.ts"

/** Bun reports a failed certificate check with `success: false`, not through an error event. */
class TlsVerificationError extends Error {
  readonly code: string
  constructor(cause: Error | null) {
    super(cause?.message ?? "certificate verification failed")
    const code: unknown = cause !== null && "code" in cause ? cause.code : undefined
    this.code = typeof code === "string" ? code : "ERR_TLS_CERT_VERIFY"
  }
}

/** One handler object for every transport: the socket's `data` is its transport. */
const HANDLERS: SocketHandler<BunOriginTransport> = {
  open: (socket) => socket.data.opened(socket),
  handshake: (socket, success, authorizationError) => socket.data.handshaken(success, authorizationError),
  data: (socket, chunk) => socket.data.received(chunk),
  drain: (socket) => socket.data.writable(),
  error: (socket, error) => socket.data.failed(error),
  connectError: (socket, error) => socket.data.failed(error),
  close: (socket, error) => socket.data.socketClosed(error)
}

export class BunOriginTransport implements OriginTransport {
  private socket: Socket<BunOriginTransport> | undefined = undefined
  /** Set once `onConnect` is due: for TLS, bytes written before the handshake would be lost. */
  private connected = false
  private listener: OriginTransportListener
  /** Written by the caller, not yet taken by the kernel; `pending[pendingHead]` goes first. */
  private pending: Array<Uint8Array> = []
  private pendingHead = 0
  private pendingBytes = 0
  /** `end` was asked for while writes were pending: shut down once they are out. */
  private endAfterFlush = false
  private writeShutDown = false
  private closed = false
  /** Reading is paused; applied to the socket as soon as it exists. */
  private readPaused = false
  private isTls = false
  /** `insecure` targets turn this off: any certificate is accepted. */
  private rejectUnauthorized = true
  private connectCalled = false

  constructor(listener: OriginTransportListener) {
    this.listener = listener
  }

  /**
   * Once. Kept apart from the constructor so the listener may refer to the transport even if
   * something is reported before `connect` returns.
   */
  connect(options: OriginTransportOptions): void {
    if (this.connectCalled) throw new Error("BunOriginTransport.connect called twice")
    this.connectCalled = true
    const tls = options.tls
    this.isTls = tls !== undefined
    this.rejectUnauthorized = tls?.rejectUnauthorized ?? true
    Bun.connect<BunOriginTransport>({
      hostname: options.host,
      port: options.port,
      data: this,
      socket: HANDLERS,
      ...(tls === undefined
        ? {}
        : {
            tls: {
              rejectUnauthorized: tls.rejectUnauthorized,
              ...(tls.serverName === undefined ? {} : { serverName: tls.serverName })
            }
          })
    }).then(
      // A transport terminated while connecting drops the socket as soon as there is one.
      (socket) => {
        if (this.closed) socket.terminate()
      },
      // Already reported through `connectError`.
      () => {}
    )
  }

  /** Where events go from now on (the handshake hands the stream to the open connection). */
  listen(listener: OriginTransportListener): void {
    this.listener = listener
  }

  /** Bytes accepted by `write` that the kernel has not taken yet. */
  get bufferedAmount(): number {
    return this.pendingBytes
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Never blocks and never drops: what the kernel does not take now waits here for `drain`. */
  write(bytes: Uint8Array): void {
    if (this.closed || this.writeShutDown || this.endAfterFlush) return
    const socket = this.socket
    if (socket === undefined || !this.connected || this.pendingBytes > 0) return this.enqueue(bytes)
    const written = Math.max(socket.write(bytes), 0)
    if (written < bytes.length) this.enqueue(written === 0 ? bytes : bytes.subarray(written))
  }

  pause(): void {
    this.readPaused = true
    this.socket?.pause()
  }

  resume(): void {
    this.readPaused = false
    this.socket?.resume()
  }

  /**
   * Half-close once everything written is out; reading goes on until the peer closes (Bun's own
   * `end` would close both ways at once).
   */
  end(): void {
    if (this.closed || this.writeShutDown) return
    if (this.pendingBytes > 0 || !this.connected) {
      this.endAfterFlush = true
      return
    }
    this.writeShutDown = true
    this.socket?.shutdown()
  }

  /** Drop the connection now, unwritten bytes included. Not reported to the listener. */
  terminate(): void {
    if (this.closed) return
    this.closed = true
    this.pending = []
    this.pendingHead = 0
    this.pendingBytes = 0
    this.socket?.terminate()
  }

  // Socket events (through HANDLERS) -----------------------------------------------------------

  /** @internal */
  opened(socket: Socket<BunOriginTransport>): void {
    this.socket = socket
    if (this.closed) return socket.terminate()
    if (this.readPaused) socket.pause()
    if (!this.isTls) this.connectedNow()
  }

  /** @internal */
  handshaken(success: boolean, authorizationError: Error | null): void {
    if (this.closed) return
    // Bun reports a certificate it could not verify as `success: false` even when told not to
    // reject it (measured with Bun 1.4.4), so the choice is made here.
    if (!success && this.rejectUnauthorized) return this.failed(new TlsVerificationError(authorizationError))
    this.connectedNow()
  }

  /** @internal */
  received(chunk: Uint8Array): void {
    if (!this.closed) this.listener.onData(chunk)
  }

  /** @internal */
  writable(): void {
    if (this.closed || !this.connected || this.pendingBytes === 0) return
    if (this.flush()) this.listener.onDrain()
  }

  /**
   * Connecting failed, TLS failed, or one of our own handlers threw (Bun reports that here
   * instead of as an uncaught exception). In every case the stream cannot be trusted any more,
   * so it is dropped and reported closed.
   * @internal
   */
  failed(error: Error): void {
    if (this.closed) return
    this.listener.onError(error)
    this.closeOnce()
    this.socket?.terminate()
  }

  /** @internal */
  socketClosed(error: Error | undefined): void {
    if (this.closed) return
    if (error !== undefined) this.listener.onError(error)
    this.closeOnce()
  }

  private connectedNow(): void {
    this.connected = true
    // Anything written before the connection was up goes first; its drain is not reported, as
    // nobody waited for one.
    if (this.pendingBytes > 0 || this.endAfterFlush) this.flush()
    if (!this.closed) this.listener.onConnect()
  }

  /** Writes pending bytes until the kernel stops taking them; true when none are left. */
  private flush(): boolean {
    const socket = this.socket
    if (socket === undefined) return false
    while (this.pendingHead < this.pending.length) {
      const chunk = this.pending[this.pendingHead]
      if (chunk === undefined) break
      const written = Math.max(socket.write(chunk), 0)
      this.pendingBytes -= written
      if (written < chunk.length) {
        this.pending[this.pendingHead] = chunk.subarray(written)
        return false
      }
      this.pendingHead++
    }
    this.pending = []
    this.pendingHead = 0
    if (this.endAfterFlush) {
      this.endAfterFlush = false
      this.end()
    }
    return true
  }

  private closeOnce(): void {
    if (this.closed) return
    this.closed = true
    this.pending = []
    this.pendingHead = 0
    this.pendingBytes = 0
    this.listener.onClose()
  }

  private enqueue(bytes: Uint8Array): void {
    this.pending.push(bytes)
    this.pendingBytes += bytes.length
  }
}
