// Shared by the deploy/ tests: paths, the release output, YAML documents, test tokens.
import { existsSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { generateKeyPairSync, sign } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DEPLOY = join(ROOT, "deploy");
export const DIST = process.env.TOKENGATE_DIST ?? join(ROOT, "dist");

/** The version every artifact carries (js/package.json; release-check.mjs proves it is everyone's). */
export const VERSION = JSON.parse(readFileSync(join(ROOT, "js/package.json"), "utf8")).version;

/** The shared gate configuration every example loads. */
export function sharedConfig() {
  return JSON.parse(readFileSync(join(DEPLOY, "tokengate.json"), "utf8"));
}

/** dist/release.json, or a failure that says how to make it. */
export function release() {
  const path = join(DIST, "release.json");
  if (!existsSync(path)) throw new Error(`${path} missing: run scripts/release.sh --offline first`);
  return JSON.parse(readFileSync(path, "utf8"));
}

/** Every YAML document of a file, as plain data; a YAML error fails the test. */
export function yamlDocuments(path) {
  const docs = parseAllDocuments(readFileSync(path, "utf8"));
  return docs.map((d) => {
    if (d.errors.length) throw new Error(`${path}: ${d.errors.map((e) => e.message).join("; ")}`);
    return d.toJS();
  });
}

/** `value` with every `providers[*].jwks.cluster` replaced: how host configurations may differ. */
export function withCluster(config, cluster) {
  const copy = structuredClone(config);
  for (const p of copy.providers) if (p.jwks && "cluster" in p.jwks) p.jwks.cluster = cluster;
  return copy;
}

/**
 * A throwaway RS256 issuer for tests: its JWKS and a signer of Cognito-shaped access tokens.
 * Keys are generated per run; tokens are valid for an hour from now, since the servers under
 * test judge them by their own clock.
 */
export function testIssuer(issuer = "https://issuer.tokengate.test/pool") {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = "deploy-test-1";
  const jwks = { keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" }] };
  const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
  const token = ({ clientId = "3q9f1k7c2m8v4n6b0x5z1l2h7d", scope = "orders/read", expIn = 3600 } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: clientId, client_id: clientId, token_use: "access", scope, iss: issuer, iat: now - 5, exp: now + expIn, jti: `t-${Math.random()}` };
    const input = `${b64({ kid, alg: "RS256" })}.${b64(claims)}`;
    return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
  };
  return { issuer, jwks, token };
}

/** The shared configuration with its provider replaced by `issuer` and inline or fetched keys. */
export function configFor(issuer, { jwksUri } = {}) {
  const config = sharedConfig();
  const p = config.providers[0];
  config.providers = [{
    name: p.name,
    issuer: issuer.issuer,
    jwks: jwksUri ? { uri: jwksUri } : { keys: issuer.jwks.keys },
    token_use: p.token_use,
    client_ids: p.client_ids,
    leeway_s: p.leeway_s,
  }];
  return config;
}

/** An HTTP server on 127.0.0.1 (free port). */
export async function serve(handler) {
  const server = createServer(handler);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { server, url, close: () => new Promise((r) => server.close(r)) };
}

/** A request with a time limit; the answer's status, headers and body text. */
export async function request(url, { method = "GET", headers = {}, body } = {}) {
  const res = await fetch(url, { method, headers, body, redirect: "manual", signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

/**
 * A request whose target is sent byte for byte (fetch would normalise `%2e%2e` and dot segments
 * away before the server could refuse them).
 */
export function rawRequest(url, { method = "GET", path, headers = {} } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
