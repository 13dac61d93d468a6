// A real OpenID Connect provider (panva/oidc-provider v9) for the portal's OIDC tests.
//
// It stands in for Pocket ID: one confidential client (client_secret_basic), PKCE required,
// RP-initiated logout, and the development login/consent pages (any login name and password).
// Claims come from the login name: sub=<login>, email=<login>@example.com, groups (login "admin"
// is in "portal-admins"). conformIdTokenClaims is off so email, name and groups land in the
// id_token, as Pocket ID does.
//
// Settings come from the environment or from `--name value` arguments (argv wins):
//   --port                  OIDC_PORT                   0 = pick a free port (default)
//   --issuer                OIDC_ISSUER                 default http://127.0.0.1:<port>
//   --client-id             OIDC_CLIENT_ID              default "portal"
//   --client-secret         OIDC_CLIENT_SECRET          default "portal-secret"
//   --redirect-uris         OIDC_REDIRECT_URIS          comma-separated, required
//   --post-logout-uris      OIDC_POST_LOGOUT_URIS       comma-separated, optional
//   --id-token-ttl          OIDC_ID_TOKEN_TTL           seconds, default 3600
// Listens on 127.0.0.1 only. Prints one line `oidc-provider ready <json>` once it serves.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const ARGS = {
  port: 'OIDC_PORT',
  issuer: 'OIDC_ISSUER',
  'client-id': 'OIDC_CLIENT_ID',
  'client-secret': 'OIDC_CLIENT_SECRET',
  'redirect-uris': 'OIDC_REDIRECT_URIS',
  'post-logout-uris': 'OIDC_POST_LOGOUT_URIS',
  'id-token-ttl': 'OIDC_ID_TOKEN_TTL',
};

function readSettings(argv, env) {
  const settings = {};
  for (const [arg, name] of Object.entries(ARGS)) settings[arg] = env[name] ?? '';
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i].replace(/^--/, '');
    if (!(arg in ARGS) || i + 1 >= argv.length) {
      throw new Error(`unknown or incomplete argument ${argv[i]}; expected one of --${Object.keys(ARGS).join(', --')}`);
    }
    settings[arg] = argv[i + 1];
    i += 1;
  }
  return settings;
}

const list = (value) => value.split(',').map((s) => s.trim()).filter(Boolean);

// A fresh signing key per start: restarting the provider is how the tests rotate keys.
function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
}

function account(login) {
  const groups = login === 'admin' ? ['portal-admins', 'staff'] : ['customers'];
  return {
    accountId: login,
    async claims() {
      return {
        sub: login,
        email: `${login}@example.com`,
        email_verified: true,
        name: `Test ${login}`,
        preferred_username: login,
        groups,
      };
    },
  };
}

function configuration(settings, key) {
  const redirectUris = list(settings['redirect-uris']);
  if (redirectUris.length === 0) throw new Error('OIDC_REDIRECT_URIS (or --redirect-uris) is required');
  return {
    clients: [{
      client_id: settings['client-id'] || 'portal',
      client_secret: settings['client-secret'] || 'portal-secret',
      redirect_uris: redirectUris,
      post_logout_redirect_uris: list(settings['post-logout-uris']),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    jwks: { keys: [key] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    ttl: { IdToken: Number(settings['id-token-ttl'] || 3600) },
    findAccount: (_ctx, id) => account(id),
  };
}

const settings = readSettings(process.argv.slice(2), process.env);
const key = signingKey();
const server = http.createServer();
server.listen(Number(settings.port || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = settings.issuer || `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration(settings, key));
  server.on('request', provider.callback());
  console.log(`oidc-provider ready ${JSON.stringify({ issuer, port, kid: key.kid })}`);
});

// The test fixture stops us by PID with SIGTERM; close cleanly so the port frees at once.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
