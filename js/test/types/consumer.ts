// Compiled with tsc --noEmit against the installed package (test/package.test.mjs): every
// documented use must type-check, and the @ts-expect-error lines must stay errors.
import {
  CognitoVerifier,
  JwtVerifier,
  TokenError,
  TokenClient,
  TokenClientError,
  authorize,
  type Claims,
  type ErrorCode,
  type DecisionRecord,
  type AuthorizeResult,
  type TokenVerifier,
} from "tokengate";

declare const jwks: { keys: { kid: string; kty: string; n: string; e: string }[] };

const cognito = CognitoVerifier.create({
  userPoolId: "eu-west-1_AbCdEf123",
  tokenUse: "access",
  clientId: ["3q9f1k7c2m8v4n6b0x5z1l2h7d"],
  scope: ["orders/read"],
  onDecision: (r: DecisionRecord) => void r.code,
});
const pools = CognitoVerifier.create(
  [
    { userPoolId: "eu-west-1_AbCdEf123", tokenUse: "access", clientId: "a" },
    { userPoolId: "us-east-1_XyZ", tokenUse: null, clientId: null, scope: { any: ["x", "y"] } },
  ],
  { cache: false, realm: "api" },
);
const generic: TokenVerifier = JwtVerifier.create({
  issuer: "https://issuer.example",
  jwks,
  algorithms: ["ES256"],
  clientId: ["svc"],
  leewaySeconds: 60,
  customClaims: [{ claim: "custom:tenant", equals: "t1" }, { claim: "groups", contains: "admin" }],
});
JwtVerifier.create({ issuer: ["a", "b"], jwksUri: "https://a/jwks", clientId: null, audience: null });

// @ts-expect-error clientId is required
CognitoVerifier.create({ userPoolId: "eu-west-1_AbCdEf123", tokenUse: "access" });
// @ts-expect-error jwksUri or jwks is required
JwtVerifier.create({ issuer: "https://issuer.example", clientId: null });
// @ts-expect-error only RS256 and ES256
JwtVerifier.create({ issuer: "i", jwks, clientId: null, algorithms: ["HS256"] });
// @ts-expect-error the constructor is private
new JwtVerifier();

async function use(token: string): Promise<string | undefined> {
  await cognito.hydrate();
  const claims: Claims = await cognito.verify(token);
  const again = cognito.verifySync(token, { now: 1767268800, scope: ["orders/write"], route: "/orders" });
  pools.cacheJwks(jwks, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123");
  generic.revoke({ jti: "x" });
  generic.revoke({ clientId: "c", issuedBefore: new Date() });
  generic.setRevocation({ jti: [], clientIds: ["c"], issuedBefore: { c: 1 } });
  // @ts-expect-error claims are read-only
  claims.scope = "x";
  try {
    cognito.verifySync(undefined);
  } catch (e) {
    if (e instanceof TokenError) {
      const code: ErrorCode = e.code;
      const status: 400 | 401 | 403 | 429 | 503 = e.status;
      const challenge: string | null = e.wwwAuthenticate;
      void [code, status, challenge, e.claims?.client_id];
    }
  }
  const res: AuthorizeResult = await authorize(cognito, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body: string = res.body;
    const err: TokenError = res.error;
    void [body, err, res.headers["www-authenticate"]];
  } else {
    void res.claims?.client_id;
    const forward: { [header: string]: string } = res.forward;
    void forward;
  }
  await cognito.authorize({ headers: { get: (_: string) => null } }, { scope: "orders/write" });
  const routed = JwtVerifier.create({
    issuer: "https://auth.example",
    clientId: null,
    jwksUri: "https://auth.example/jwks",
    routes: [
      { match: { prefix: "/health" }, allow: "anonymous" },
      { match: { prefix: "/orders", methods: ["GET"] }, scopes: { all: ["orders/read"] } },
    ],
    default: "deny",
    forward: { client_id: "x-client-id" },
  });
  const answer: AuthorizeResult = routed.decideSync({ method: "GET", target: "/orders/7", authorization: [`Bearer ${token}`] });
  if (!answer.ok) void [answer.status, answer.code];
  const fromConfig = JwtVerifier.fromConfig({ providers: [] }, { crypto: "wasm" });
  void (await fromConfig.decide({ method: "GET", target: "/" }));
  return again.client_id;
}

const client = new TokenClient({
  tokenEndpoint: "https://auth.example/oauth2/token",
  clientId: "id",
  clientSecret: "secret",
  scope: ["orders/read"],
});
client.getToken().then((t: string) => t.length, (e: unknown) => e instanceof TokenClientError && e.code);
client.invalidate();

void use;
