// A minimal OCI distribution registry on 127.0.0.1, enough for a client to push an image and
// pull it back (the distribution spec's end-1 … end-10 flows: monolithic and chunked blob
// uploads, manifests by tag and digest). It checks every digest it is given, as a real registry
// does, and keeps what it received for the test to inspect. No auth, no TLS.
import { createHash } from "node:crypto";
import { createServer } from "node:http";

export async function startRegistry() {
  const blobs = new Map(); // "sha256:…" → Buffer
  const manifests = new Map(); // "name@ref" → { mediaType, body }
  const uploads = new Map(); // id → Buffer[]
  let next = 0;
  const digestOf = (b) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, "http://registry");
    const send = (status, headers = {}, payload = "") => {
      res.writeHead(status, { "docker-distribution-api-version": "registry/2.0", ...headers });
      res.end(req.method === "HEAD" ? undefined : payload);
    };
    if (url.pathname === "/v2/" || url.pathname === "/v2") return send(200, { "content-type": "application/json" }, "{}");
    let m = url.pathname.match(/^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/);
    if (m) {
      const [, name, id] = m;
      if (req.method === "POST") {
        const mount = url.searchParams.get("mount");
        if (mount && blobs.has(mount)) return send(201, { location: `/v2/${name}/blobs/${mount}`, "docker-content-digest": mount });
        const digest = url.searchParams.get("digest");
        if (digest) return finish(name, digest, [body]);
        const uid = String(++next);
        uploads.set(uid, []);
        return send(202, { location: `/v2/${name}/blobs/uploads/${uid}`, range: "0-0", "docker-upload-uuid": uid, "content-length": "0" });
      }
      if (!uploads.has(id)) return send(404);
      if (req.method === "PATCH") {
        uploads.get(id).push(body);
        const size = uploads.get(id).reduce((n, b) => n + b.length, 0);
        return send(202, { location: `/v2/${name}/blobs/uploads/${id}`, range: `0-${Math.max(size - 1, 0)}`, "docker-upload-uuid": id, "content-length": "0" });
      }
      if (req.method === "PUT") {
        const parts = uploads.get(id);
        uploads.delete(id);
        return finish(name, url.searchParams.get("digest"), [...parts, body]);
      }
      return send(405);
    }
    m = url.pathname.match(/^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/);
    if (m) {
      const blob = blobs.get(m[2]);
      if (!blob) return send(404);
      return send(200, { "content-length": String(blob.length), "docker-content-digest": m[2], "content-type": "application/octet-stream" }, blob);
    }
    m = url.pathname.match(/^\/v2\/(.+)\/manifests\/([^/]+)$/);
    if (m) {
      const [, name, ref] = m;
      if (req.method === "PUT") {
        const digest = digestOf(body);
        if (ref.startsWith("sha256:") && ref !== digest) return send(400, {}, "digest mismatch");
        const entry = { mediaType: req.headers["content-type"], body };
        manifests.set(`${name}@${ref}`, entry);
        manifests.set(`${name}@${digest}`, entry);
        return send(201, { location: `/v2/${name}/manifests/${digest}`, "docker-content-digest": digest, "content-length": "0" });
      }
      const entry = manifests.get(`${name}@${ref}`);
      if (!entry) return send(404, { "content-type": "application/json" }, JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN" }] }));
      return send(200, {
        "content-type": entry.mediaType,
        "content-length": String(entry.body.length),
        "docker-content-digest": digestOf(entry.body),
      }, entry.body);
    }
    return send(404);

    function finish(name, digest, parts) {
      const blob = Buffer.concat(parts);
      if (!digest || digestOf(blob) !== digest) return send(400, {}, "DIGEST_INVALID");
      blobs.set(digest, blob);
      return send(201, { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest, "content-length": "0" });
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${server.address().port}`;
  return { host, blobs, manifests, close: () => new Promise((r) => server.close(r)) };
}
