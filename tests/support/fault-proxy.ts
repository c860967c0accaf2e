/**
 * A small TCP fault proxy for tests: sits between a client and PostgreSQL on 127.0.0.1 and can add
 * latency, drop all bytes (blackhole), refuse new connections and reset live ones.
 */
import { connect, createServer, type Socket } from "node:net";
import process from "node:process";

export interface FaultProxy {
  host: string;
  port: number;
  /** Rewrites a postgres URL's host:port to point at the proxy (user, database and query are kept). */
  url(base: string): string;
  /** Delays every chunk in each direction by `ms` (order preserved). 0 turns it off. */
  setLatency(ms: number): void;
  /**
   * On: sockets stay open but every byte in both directions is dropped; new connections are accepted
   * but never forwarded, and closes from either side are not passed on. Off: forwarding resumes (the
   * bytes dropped meanwhile are gone, so those sessions are usually broken) and pending closes are
   * passed on.
   */
  blackhole(on: boolean): void;
  /**
   * On: the proxy stops listening, so new connects fail with ECONNREFUSED; live connections keep
   * working. Off: it listens on the same port again.
   */
  refuse(on: boolean): void;
  /**
   * Destroys every current connection (both sides) with `socket.resetAndDestroy()`: a TCP RST on
   * Node; Bun 1.3.5 has the method but sends a FIN, so clients see a plain close there.
   */
  resetAll(): void;
  /** Bytes forwarded from clients to the server (dropped bytes are not counted). Monotonic. */
  readonly bytesFromClient: number;
  /** Bytes forwarded from the server to clients (dropped bytes are not counted). Monotonic. */
  readonly bytesToClient: number;
  /** Client connections accepted. Monotonic. */
  readonly connectionsAccepted: number;
  /** Number of client connections currently open. */
  readonly openConnections: number;
  /** Stops listening and destroys everything. */
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  target: { host: string; port: number };
}

interface Pipe {
  /** Where bytes go. */
  to: Socket;
  queue: { due: number; chunk: Uint8Array }[];
  timer: ReturnType<typeof setTimeout> | undefined;
  lastDue: number;
  count(n: number): void;
}

interface Pair {
  client: Socket;
  server: Socket | undefined;
  up: Pipe | undefined;
  down: Pipe | undefined;
  /** A side closed while blackholed: pass the close on when the blackhole is lifted. */
  closePending: boolean;
}

function hardDestroy(socket: Socket | undefined): void {
  if (!socket || socket.destroyed) return;
  const s = socket as Socket & { resetAndDestroy?: () => Socket };
  if (typeof s.resetAndDestroy === "function" && !socket.connecting) {
    try {
      s.resetAndDestroy();
      return;
    } catch {
      // fall through to a plain destroy
    }
  }
  socket.destroy();
}

const HOST = "127.0.0.1";

/** Starts a fault proxy on 127.0.0.1 and a random free port, forwarding to `target`. */
export function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { target } = options;
  const pairs = new Set<Pair>();
  let latency = 0;
  let blackholed = false;
  let refusing = false;
  let closed = false;
  let bytesFromClient = 0;
  let bytesToClient = 0;
  let connectionsAccepted = 0;

  const flush = (pipe: Pipe): void => {
    pipe.timer = undefined;
    const now = performance.now();
    while (pipe.queue.length > 0 && pipe.queue[0]!.due <= now) {
      deliver(pipe, pipe.queue.shift()!.chunk);
    }
    schedule(pipe);
  };

  const schedule = (pipe: Pipe): void => {
    if (pipe.timer || pipe.queue.length === 0) return;
    const wait = Math.max(0, pipe.queue[0]!.due - performance.now());
    pipe.timer = setTimeout(flush, wait, pipe);
  };

  const deliver = (pipe: Pipe, chunk: Uint8Array): void => {
    if (blackholed || pipe.to.destroyed) return;
    pipe.count(chunk.byteLength);
    pipe.to.write(chunk);
  };

  const send = (pipe: Pipe, chunk: Uint8Array): void => {
    if (blackholed) return;
    const now = performance.now();
    if (latency <= 0 && pipe.queue.length === 0) {
      deliver(pipe, chunk);
      return;
    }
    // Never earlier than a chunk already queued: order is preserved when latency shrinks.
    const due = Math.max(now + latency, pipe.lastDue);
    pipe.lastDue = due;
    pipe.queue.push({ due, chunk });
    schedule(pipe);
  };

  const makePipe = (to: Socket, count: (n: number) => void): Pipe => ({
    to,
    queue: [],
    timer: undefined,
    lastDue: 0,
    count,
  });

  const teardown = (pair: Pair, hard: boolean): void => {
    for (const pipe of [pair.up, pair.down]) {
      if (pipe?.timer) clearTimeout(pipe.timer);
      if (pipe) pipe.queue.length = 0;
    }
    if (hard) {
      hardDestroy(pair.client);
      hardDestroy(pair.server);
    } else {
      pair.client.destroy();
      pair.server?.destroy();
    }
    pairs.delete(pair);
  };

  const onSideClosed = (pair: Pair): void => {
    if (!pairs.has(pair)) return;
    if (blackholed) {
      pair.closePending = true;
      return;
    }
    // Let queued (delayed) bytes go out first, then close.
    const drainThenClose = (): void => {
      const busy = [pair.up, pair.down].some((p) => p && p.queue.length > 0);
      if (busy && !closed) setTimeout(drainThenClose, Math.max(1, latency));
      else {
        pair.client.end();
        pair.server?.end();
        setTimeout(() => teardown(pair, false), 50).unref?.();
      }
    };
    drainThenClose();
  };

  const connectUpstream = (pair: Pair): void => {
    const server = connect({ host: target.host, port: target.port });
    pair.server = server;
    server.setNoDelay(true);
    pair.up = makePipe(server, (n) => (bytesFromClient += n));
    pair.down = makePipe(pair.client, (n) => (bytesToClient += n));
    const up = pair.up;
    const down = pair.down;
    server.on("data", (chunk: Uint8Array) => send(down, chunk));
    server.on("error", () => {});
    server.on("close", () => onSideClosed(pair));
    pair.client.on("data", (chunk: Uint8Array) => send(up, chunk));
  };

  const onConnection = (client: Socket): void => {
    connectionsAccepted++;
    client.on("error", () => {});
    if (closed) {
      hardDestroy(client);
      return;
    }
    client.setNoDelay(true);
    const pair: Pair = { client, server: undefined, up: undefined, down: undefined, closePending: false };
    pairs.add(pair);
    client.on("close", () => onSideClosed(pair));
    if (blackholed) {
      // Accepted, but nothing is forwarded: swallow whatever the client sends, never dial the server.
      client.on("data", () => {});
      return;
    }
    connectUpstream(pair);
  };

  let listener = createServer(onConnection);
  let port = 0;

  const relisten = (): void => {
    // Same port again; binding happens synchronously for an IP literal (Node and Bun), so a connect
    // right after refuse(false) is accepted.
    listener = createServer(onConnection);
    listener.on("error", (error) => {
      process.stderr.write(`[fault-proxy] could not listen on ${HOST}:${port} again: ${String(error)}\n`);
    });
    listener.listen(port, HOST);
  };

  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(0, HOST, () => {
      listener.off("error", reject);
      const address = listener.address();
      port = typeof address === "object" && address ? address.port : 0;
      const proxy: FaultProxy = {
        host: HOST,
        port,
        url(base: string) {
          const u = new URL(base);
          u.hostname = HOST;
          u.port = String(port);
          return u.href;
        },
        setLatency(ms: number) {
          latency = Math.max(0, ms);
        },
        blackhole(on: boolean) {
          blackholed = on;
          if (on) {
            for (const pair of pairs) {
              for (const pipe of [pair.up, pair.down]) {
                if (pipe?.timer) clearTimeout(pipe.timer);
                if (pipe) {
                  pipe.timer = undefined;
                  pipe.queue.length = 0;
                }
              }
            }
          } else {
            for (const pair of [...pairs]) {
              if (pair.closePending) teardown(pair, false);
            }
          }
        },
        refuse(on: boolean) {
          if (closed || on === refusing) return;
          refusing = on;
          // Stop listening: the kernel answers new connects with RST (ECONNREFUSED), in every runtime.
          // Live connections are untouched.
          if (on) listener.close();
          else relisten();
        },
        resetAll() {
          for (const pair of [...pairs]) teardown(pair, true);
        },
        get bytesFromClient() {
          return bytesFromClient;
        },
        get bytesToClient() {
          return bytesToClient;
        },
        get connectionsAccepted() {
          return connectionsAccepted;
        },
        get openConnections() {
          return pairs.size;
        },
        close() {
          if (closed) return Promise.resolve();
          closed = true;
          for (const pair of [...pairs]) teardown(pair, true);
          if (refusing) return Promise.resolve();
          return new Promise<void>((done) => listener.close(() => done()));
        },
      };
      resolve(proxy);
    });
  });
}
