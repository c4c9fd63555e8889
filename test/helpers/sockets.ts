/** The client end of a WebSocket the Worker answered with (101): what it receives and how it closed. */
export function listen(ws: WebSocket) {
  const messages: string[] = [];
  let closed: { code: number; reason: string } | null = null;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  ws.addEventListener("message", (e) => {
    messages.push(String(e.data));
    wake();
  });
  ws.addEventListener("close", (e) => {
    closed = { code: e.code, reason: e.reason };
    wake();
  });
  ws.accept();
  /** Waits (at most 3 s) until `done()`; messages and the close wake it. */
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + 3000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  /** The messages so far, parsed. */
  const parsed = <T = Record<string, unknown>>() => messages.map((m) => JSON.parse(m) as T);
  return { ws, messages, parsed, closed: () => closed, until };
}
