// fetch with a deadline and a body size cap, shared by the JWKS fetcher and TokenClient.

/**
 * fetch `url` and read at most `maxBytes + 1` bytes of the body, all within `timeoutMs`.
 * Resolves to { status, headers, body: Uint8Array, truncated }; rejects on network errors and
 * on the deadline (AbortError).
 */
export async function fetchCapped(fetchFn, url, init, timeoutMs, maxBytes) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetchFn(url, { ...init, signal: ac.signal });
    const declared = Number(res.headers.get("content-length"));
    if (declared > maxBytes) {
      ac.abort();
      return { status: res.status, headers: res.headers, body: new Uint8Array(0), truncated: true };
    }
    const chunks = [];
    let total = 0;
    let truncated = false;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        total += value.byteLength;
        if (total > maxBytes) {
          truncated = true;
          reader.cancel().catch(() => {});
          break;
        }
      }
    }
    const body = new Uint8Array(Math.min(total, maxBytes + 1));
    let at = 0;
    for (const c of chunks) {
      const n = Math.min(c.byteLength, body.length - at);
      body.set(n === c.byteLength ? c : c.subarray(0, n), at);
      at += n;
      if (at >= body.length) break;
    }
    return { status: res.status, headers: res.headers, body, truncated };
  } finally {
    clearTimeout(timer);
  }
}
