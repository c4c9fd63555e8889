/**
 * Sending on, and closing, a socket the object holds: one that is closing or
 * gone is skipped, since its close is already under way. For the streams'
 * sockets and the agents' alike.
 */
export function sendQuietly(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // closed under us
  }
}

export function closeQuietly(ws: WebSocket, why: { code: number; reason: string }): void {
  try {
    ws.close(why.code, why.reason);
  } catch {
    // already closed
  }
}
