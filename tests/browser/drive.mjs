// A person in Debian's Chromium, through Chromium's own WebAuthn stack with its virtual
// authenticator (CDP `WebAuthn.*`, ctap2, internal, user verification on): signs in with the
// password, adds a passkey, logs out, signs in with the passkey alone, and once more with user
// verification refused. Serves tests/browser/passkeys.html on http://localhost:PAGE_PORT (a
// secure context) and passes /v1 through to Warden at WARDEN_URL, so the page and the API share
// the origin the relying party is configured with.
//
//   PAGE_PORT=… WARDEN_URL=http://127.0.0.1:… EMAIL=… PASSWORD=… SHOTS=dir node drive.mjs
//
// Prints one JSON object: what the page said after each step.
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const { PAGE_PORT, WARDEN_URL, EMAIL, PASSWORD, SHOTS } = process.env;
const here = new URL('.', import.meta.url);

async function pass(request, response) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  const headers = {};
  for (const name of ['content-type', 'authorization']) {
    if (request.headers[name]) headers[name] = request.headers[name];
  }
  const answer = await fetch(new URL(request.url, WARDEN_URL), {
    method: request.method,
    headers,
    body: chunks.length ? Buffer.concat(chunks) : undefined,
  });
  response.writeHead(answer.status, {
    'content-type': answer.headers.get('content-type') ?? 'application/octet-stream',
  });
  response.end(Buffer.from(await answer.arrayBuffer()));
}

const server = createServer(async (request, response) => {
  try {
    if (request.url.startsWith('/v1/')) return await pass(request, response);
    const [file, type] = request.url === '/passkeys.js'
      ? ['passkeys.js', 'text/javascript']
      : ['passkeys.html', 'text/html; charset=utf-8'];
    response.writeHead(200, { 'content-type': type });
    response.end(await readFile(new URL(file, here)));
  } catch (error) {
    response.writeHead(502);
    response.end(String(error));
  }
});
await new Promise((resolve) => server.listen(Number(PAGE_PORT), 'localhost', resolve));

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const results = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await mkdir(SHOTS, { recursive: true });
  const status = () => page.locator('#status').textContent();
  // Does `act`, waits until the page says something new, keeps a screenshot of it.
  async function step(name, act) {
    const before = await status();
    await act();
    await page.waitForFunction(
      (previous) => document.getElementById('status').textContent !== previous,
      before,
      { timeout: 15000 },
    );
    results[name] = await status();
    await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  }

  await page.goto(`http://localhost:${PAGE_PORT}/`);
  await step('password_sign_in', async () => {
    await page.fill('#email', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('#login button');
  });
  await step('passkey_added', async () => {
    await page.fill('#confirm-password', PASSWORD);
    await page.click('#add button');
  });
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  results.resident_credentials = credentials.filter((c) => c.isResidentCredential).length;
  await step('logged_out', () => page.click('#log-out'));
  await step('passkey_sign_in', () => page.click('#passkey-sign-in'));
  await step('logged_out_again', () => page.click('#log-out'));
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  await step('unverified_sign_in', () => page.click('#passkey-sign-in'));
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(results));
