// A certified OpenID Provider (panva's oidc-provider) on loopback for Warden's single sign-on
// tests. Every start makes new signing keys, so a restart is a key rotation.
//
//   node server.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI [BACKCHANNEL_LOGOUT_URI]
//
// The login form (devInteractions) accepts any login; the login is the subject, and gives the
// claims: `NAME@DOMAIN` has that address verified, `unverified:NAME@DOMAIN` unverified, and
// `stringly:NAME@DOMAIN` verified as the string "true" (some providers send it so).
// IDP_ID_TOKEN_SECONDS sets how long ID tokens live (an hour by default).
// POST /__test/tamper makes the next token response carry an ID token whose payload was changed
// after signing.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, backchannelUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

async function signingKey(alg, options) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: `${alg}-${Date.now()}-${Math.random().toString(36).slice(2)}` };
}

function claimsOf(login) {
  const [, mode, email] = /^(?:(unverified|stringly):)?(.*)$/.exec(login);
  const verified = mode === 'unverified' ? false : mode === 'stringly' ? 'true' : true;
  return { sub: login, email, email_verified: verified, name: email.split('@')[0] };
}

const client = {
  client_id: clientId,
  client_secret: clientSecret,
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};
if (backchannelUri) {
  client.backchannel_logout_uri = backchannelUri;
  client.backchannel_logout_session_required = true;
}

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [await signingKey('RS256', { modulusLength: 2048 }), await signingKey('ES256')] },
  cookies: { keys: ['warden-test-identity-provider'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  pkce: { required: () => true },
  // IDP_ID_TOKEN_SECONDS shortens ID tokens' lives for a test of their expiry.
  ttl: { IdToken: Number(process.env.IDP_ID_TOKEN_SECONDS || 3600) },
  // Warden listens on loopback here, which the provider's guard against server-side request
  // forgery refuses for back-channel logout calls; a real deployment keeps the guard.
  fetch: (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined }),
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
});
provider.proxy = false;

let tamperNext = false;
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/__test/tamper') {
    tamperNext = true;
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === '/token' && tamperNext && ctx.body && ctx.body.id_token) {
    tamperNext = false;
    const [header, payload, signature] = ctx.body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.sub = 'someone-else@example.com';
    ctx.body = { ...ctx.body, id_token: [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.') };
  }
});

provider.on('backchannel.error', (ctx, error) => console.log(`backchannel error: ${error.message} ${error.cause ? error.cause.message || error.cause : ""}`));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
