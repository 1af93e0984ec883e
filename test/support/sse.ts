/** A minimal Server-Sent Events reader over fetch, for tests that need a real socket. */

/** One parsed SSE message. */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** Reads messages from `url` until `stop(message)` is true or the stream ends. */
export async function readSse(
  url: string,
  options: { lastEventId?: string; stop?: (m: SseMessage, all: SseMessage[]) => boolean } = {},
): Promise<{ messages: SseMessage[]; ended: boolean }> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  const res = await fetch(url, { headers, signal: controller.signal });
  if (!res.ok || !res.body) throw new Error(`SSE ${url}: ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const messages: SseMessage[] = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { messages, ended: true };
    buffer += value;
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      cut = buffer.indexOf('\n\n');
      const message: SseMessage = { data: '' };
      let isComment = true;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        isComment = false;
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') message.id = value;
        else if (field === 'event') message.event = value;
        else if (field === 'data') message.data += value;
      }
      if (isComment) continue;
      messages.push(message);
      if (options.stop?.(message, messages)) {
        controller.abort();
        return { messages, ended: false };
      }
    }
  }
}
