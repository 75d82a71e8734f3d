// Express middleware for tokengate: every request is handed to the core's request gate (method,
// request-target as received, every Authorization value, the client certificate when the
// configuration looks at it) and the core's answer is sent as it is, so Express answers exactly
// what the Envoy filter and the Worker answer for the same request.
//
//   app.use(tokengate(verifier));                 // first, before routes and body parsers
//   app.get("/orders", (req, res) => res.json(req.tokengate.claims));
//
// On an allowed request: the headers the configuration forwards (`forward`) are set from the
// token's claims, after removing the client's own copies of them (`verifier.removeHeaders`);
// Authorization is removed when the configuration says `strip_authorization`; `req.tokengate`
// holds { claims, route, wouldDeny }.
export function tokengate(verifier, { scope } = {}) {
  if (!verifier || typeof verifier.authorize !== "function") {
    throw new TypeError("tokengate(verifier): a CognitoVerifier or JwtVerifier is needed");
  }
  const options = scope === undefined ? undefined : { scope };
  return async function tokengateMiddleware(req, res, next) {
    let auth;
    try {
      auth = await verifier.authorize(gateRequest(req), options);
    } catch (err) {
      next(err); // never a verdict on the token (those are answers): a programming error
      return;
    }
    if (!auth.ok) {
      // writeHead + end, not res.set/send: Express would add a charset and an ETag, and every
      // tokengate host sends the core's answer byte for byte.
      res.writeHead(auth.status, auth.headers).end(auth.body);
      return;
    }
    for (const name of verifier.removeHeaders) delete req.headers[name];
    if (auth.stripAuthorization) delete req.headers.authorization;
    Object.assign(req.headers, auth.forward);
    req.tokengate = { claims: auth.claims, route: auth.route, wouldDeny: auth.wouldDeny };
    next();
  };
}

// The request as the client sent it. Express rewrites req.url below a mount path
// (app.use("/orders", …) sees "/"); the gate must judge the request-target that arrived, so
// routes and path rules match the same bytes they match in Envoy.
function gateRequest(req) {
  return {
    method: req.method,
    url: req.originalUrl ?? req.url,
    headers: req.headers,
    headersDistinct: req.headersDistinct,
    rawHeaders: req.rawHeaders,
    socket: req.socket,
  };
}
