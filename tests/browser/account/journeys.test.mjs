// The account pages as a person uses them, in Debian's Chromium: each journey on a fresh Warden.
// Screenshots of every page land in target/screenshots/account/; every page visited is checked
// with axe-core (no serious or critical violation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PASSWORD, accessibilityProblems, api, decodeQr, launch, mailsAbout, notice, oathtool, register,
  shot, shots, signIn, startProvider, startWarden,
} from './warden.mjs';

/** Runs `journey` with a fresh Warden and a browser, stopping both after. */
async function withWarden(journey) {
  const warden = await startWarden();
  const browser = await launch();
  try {
    await journey(warden, browser);
  } finally {
    await browser.close();
    warden.stop();
  }
}

async function accessible(page) {
  assert.deepEqual(await accessibilityProblems(page), [], `axe-core on ${page.url()}`);
}

test('a person registers, signs in with the keyboard alone, and sees their security settings', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await page.goto(`${warden.url}/account`);
    assert.match(page.url(), /\/account\/sign-in$/, 'not signed in: the sign-in page');
    await shot(page, '01-sign-in');
    await accessible(page);

    await page.goto(`${warden.url}/account/register`);
    await shot(page, '02-register');
    await accessible(page);
    // A weak password is refused beside its field, and nothing typed elsewhere is lost.
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Password').fill('password');
    await page.getByRole('button', { name: 'Create account' }).click();
    const error = page.locator('#f-password-error');
    assert.match(await error.textContent(), /too common|too easy/);
    assert.equal(await page.getByLabel('Email').inputValue(), 'ada@example.com');
    assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
    await shot(page, '03-register-refused');

    await register(page, warden, 'ada@example.com');
    assert.equal(await notice(page), 'Your account is ready: sign in.');

    // Keyboard only: type, Tab, type, Enter.
    await page.getByLabel('Email').focus();
    await page.keyboard.type('ada@example.com');
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/account\/security/);
    assert.match(await page.locator('p.who').textContent(), /ada@example\.com/);
    await shot(page, '04-security-settings');
    await accessible(page);

    // At 360 px nothing runs off the side.
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 360, `page is ${overflow}px wide at 360px`);
    await shot(page, '05-security-settings-360px');
  }));

test('the pages send a strict Content-Security-Policy and refuse a cross-site form post', () =>
  withWarden(async (warden, browser) => {
    const answer = await fetch(`${warden.url}/account/sign-in`);
    const csp = answer.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(answer.headers.get('x-frame-options'), 'DENY');
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    const cookie = answer.headers.get('set-cookie');
    assert.match(cookie, /^__Host-warden-csrf=.+; HttpOnly; SameSite=Lax; Secure; Path=\//);

    // Ada is signed in; another site's page posts "log out of all devices" at her browser.
    const page = await browser.newPage();
    await register(page, warden, 'ada@example.com');
    await signIn(page, warden, 'ada@example.com');
    await page.waitForURL(/\/account\/security/);
    const evil = createServer((_, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<form id="f" method="post" action="${warden.url}/account/security/sessions/end-all">
        <input name="csrf" value="guessed"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      await page.goto(`http://127.0.0.1:${evil.address().port}/`);
      await page.waitForURL(/end-all/);
      const body = await page.locator('body').textContent();
      assert.match(body, /cross_site_request/, body);
    } finally {
      evil.close();
    }
    await page.goto(`${warden.url}/account/security`);
    assert.match(page.url(), /\/account\/security/, 'still signed in: the post was refused');

    // The session cookie is not a bearer token for /v1.
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === '__Host-warden-session');
    assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Lax');
    const me = await fetch(`${warden.url}/v1/me`, { headers: { cookie: `${session.name}=${session.value}` } });
    assert.equal(me.status, 401);
  }));

/** Sets up the authenticator app from the QR code on screen; answers the secret and codes. */
async function setUpTotp(page, done = 'Your authenticator app is set up.') {
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  const qr = join(shots, '06-totp-qr-code.png');
  await page.locator('#totp-qr').screenshot({ path: qr });
  await shot(page, '07-totp-set-up');
  await accessible(page);
  const uri = decodeQr(qr);
  const secret = new URL(uri).searchParams.get('secret');
  assert.equal(secret, (await page.locator('#totp-secret').textContent()).trim(), 'QR and text agree');
  const codes = (await page.locator('#recovery-codes li').allTextContents()).map((c) => c.trim());
  assert.equal(codes.length, 10);
  // Download gives the same codes as a text file, one a line.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'warden-recovery-codes.txt');
  const saved = await readFile(await download.path(), 'utf8');
  assert.deepEqual(saved.trim().split('\n'), codes);
  // The previous step's code: the sign-in after may use the current one.
  await page.getByLabel('Code from the app').fill(oathtool(secret, -30));
  await page.getByRole('button', { name: 'Confirm' }).click();
  assert.equal(await notice(page), done);
  return { secret, codes };
}

test('TOTP from a scanned QR code, then sign-ins with the app and with a recovery code', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await register(page, warden, 'ada@example.com');
    await signIn(page, warden, 'ada@example.com');
    const { secret, codes } = await setUpTotp(page);
    await shot(page, '08-totp-on');

    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.equal(await notice(page), 'You are signed out.');
    await signIn(page, warden, 'ada@example.com');
    await page.waitForURL(/second-step/);
    await shot(page, '09-second-step');
    await accessible(page);
    // A wrong code is refused beside the field.
    await page.getByLabel('Code from your authenticator app').fill('000000');
    await page.getByRole('button', { name: 'Continue' }).first().click();
    assert.match(await page.locator('.error.banner').textContent(), /wrong|used/);
    await page.getByLabel('Code from your authenticator app').fill(oathtool(secret));
    await page.getByRole('button', { name: 'Continue' }).first().click();
    await page.waitForURL(/\/account\/security/);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, warden, 'ada@example.com');
    await page.getByLabel('One of your recovery codes').fill(codes[0]);
    await page.getByRole('button', { name: 'Continue' }).last().click();
    await page.waitForURL(/\/account\/security/);
    assert.match(await page.locator('#second-factors').textContent(), /9 unused/);
  }));

test('ending a session in another browser, then logging out of all devices', () =>
  withWarden(async (warden, browser) => {
    const laptop = await (await browser.newContext()).newPage();
    const phone = await (await browser.newContext({ userAgent: 'Phone browser 1.0' })).newPage();
    await register(laptop, warden, 'ada@example.com');
    await signIn(laptop, warden, 'ada@example.com');
    await signIn(phone, warden, 'ada@example.com');
    await phone.waitForURL(/\/account\/security/);

    await laptop.reload();
    const phoneRow = laptop.locator('#sessions tr', { hasText: 'Phone browser 1.0' });
    assert.match(await laptop.locator('#sessions tr', { hasText: 'This session' }).textContent(), /Active/);
    await shot(laptop, '10-sessions');
    await phoneRow.getByRole('button', { name: 'Sign out' }).click();
    assert.equal(await notice(laptop), 'That session is signed out.');
    assert.match(await phoneRow.textContent(), /signed out from another session/);
    await phone.reload();
    assert.match(phone.url(), /\/account\/sign-in$/, 'the phone is signed out at once');

    await signIn(phone, warden, 'ada@example.com');
    await phone.waitForURL(/\/account\/security/);
    await laptop.getByRole('button', { name: 'Log out of all devices' }).click();
    assert.match(laptop.url(), /\/account\/sign-in/);
    await phone.reload();
    assert.match(phone.url(), /\/account\/sign-in$/, 'every device is signed out');
  }));

test('an API token is created after the password, shown once, and works with curl', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await register(page, warden, 'ada@example.com');
    await signIn(page, warden, 'ada@example.com');
    const tokens = page.locator('#tokens');
    await tokens.getByLabel('Name').fill('Nightly report');
    await tokens.getByLabel('Password').fill('not my password');
    await tokens.getByRole('button', { name: 'Create token' }).click();
    assert.match(await page.locator('#f-tokens-password-error').textContent(), /wrong/);
    await tokens.getByLabel('Name').fill('Nightly report');
    await tokens.getByLabel('Password').fill(PASSWORD);
    await tokens.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.locator('#new-token').textContent()).trim();
    assert.match(token, /^wat_/);
    await shot(page, '11-api-token-shown-once');
    await accessible(page);

    const me = JSON.parse(execFileSync('curl', ['-sf', '-H', `Authorization: Bearer ${token}`, `${warden.url}/v1/me`]).toString());
    assert.equal(me.email, 'ada@example.com');

    await page.goto(`${warden.url}/account/security#tokens`);
    const row = page.locator('#tokens tr', { hasText: 'Nightly report' });
    assert.doesNotMatch(await page.content(), new RegExp(token), 'shown only once');
    await row.getByRole('button', { name: 'Revoke' }).click();
    assert.equal(await notice(page), 'The API token is revoked.');
    const after = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${token}`, `${warden.url}/v1/me`]).toString();
    assert.equal(after, '401');
  }));

test('a forgotten password is reset from the mailed link', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await register(page, warden, 'ada@example.com');
    await page.goto(`${warden.url}/account/sign-in`);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByRole('button', { name: 'Mail me a link' }).click();
    assert.match(await notice(page), /on its way/);
    await shot(page, '12-forgot-password');

    const [mail] = await mailsAbout(warden, 'Reset your Warden password');
    const link = mail.match(/http:\/\/localhost:\d+\/reset-password\?token=[\w-]+/)[0];
    await page.goto(link);
    await accessible(page);
    assert.match(await page.locator('.hint').textContent(), /8 to 128 characters/, 'the rules before submit');
    await page.getByLabel('New password').fill('short');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    assert.match(await page.locator('#f-new_password-error').textContent(), /at least 8/);
    await shot(page, '13-reset-password-refused');
    await page.getByLabel('New password').fill('a brand new horse staple');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    assert.match(await notice(page), /password is changed/);

    await signIn(page, warden, 'ada@example.com', 'a brand new horse staple');
    await page.waitForURL(/\/account\/security/);
    // The link worked once.
    await page.goto(link);
    await page.getByLabel('New password').fill('yet another horse staple');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    assert.match(await page.locator('#f-new_password-error').textContent(), /invalid, used or expired/);
  }));

test('a workspace holder requires MFA on the workspace page; a member is led straight to set-up', () =>
  withWarden(async (warden, browser) => {
    const holder = await (await browser.newContext()).newPage();
    const member = await (await browser.newContext()).newPage();
    await register(member, warden, 'bob@example.com');
    await register(holder, warden, 'holder@example.com');
    await signIn(holder, warden, 'holder@example.com');
    await holder.getByRole('link', { name: 'Workspaces' }).click();
    await holder.getByLabel('Workspace name').fill('Support desk');
    await holder.getByRole('button', { name: 'Create workspace' }).click();
    await holder.waitForURL(/\/account\/workspaces\/[0-9a-f-]+$/);
    // An address with no account is refused beside the form, in its section.
    await holder.getByLabel("Their account's email").fill('nobody@example.com');
    await holder.getByRole('button', { name: 'Add member' }).click();
    assert.match(await holder.locator('#members .error.banner').textContent(), /no account/);
    await holder.getByLabel("Their account's email").fill('bob@example.com');
    await holder.getByLabel('Role', { exact: true }).selectOption('agent');
    await holder.getByRole('button', { name: 'Add member' }).click();
    assert.equal(await notice(holder), 'The member is added.');
    assert.match(await holder.locator('#members').textContent(), /bob@example\.com/);
    await holder.getByLabel('Keep data for this many days').fill('30');
    await holder.getByRole('button', { name: 'Save' }).click();
    assert.match(await holder.locator('#archival').textContent(), /Next purge: \d{4}-\d\d-\d\d 00:00 UTC/);
    await shot(holder, '14-workspace-settings');
    await accessible(holder);

    // Bob is signed in with a password alone when the policy comes.
    await signIn(member, warden, 'bob@example.com');
    await member.waitForURL(/\/account\/security/);
    assert.match(await holder.locator('#policy-warning').textContent(), /yours too/);
    await holder.getByRole('button', { name: 'Require a second factor' }).click();
    assert.match(holder.url(), /\/account\/sign-in/, "the holder's password-only session ended too");
    await member.reload();
    assert.match(member.url(), /\/account\/sign-in$/, "Bob's session ended at once");

    await signIn(member, warden, 'bob@example.com');
    await member.waitForURL(/notice=enroll/);
    assert.match(await notice(member), /requires a second factor/);
    assert.equal(await member.locator('#password').count(), 0, 'only set-up is open');
    await shot(member, '15-enrollment-required');
    await accessible(member);
    await setUpTotp(member, 'Your second factor is set up. Sign in again with it to continue.');
    await signIn(member, warden, 'bob@example.com');
    await member.waitForURL(/second-step/);
  }));

test('a passkey added on the settings page signs in alone, in Chromium with its virtual authenticator', () =>
  withWarden(async (warden, browser) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
        hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    await register(page, warden, 'ada@example.com');
    await signIn(page, warden, 'ada@example.com');
    const adding = page.locator('#passkey-add');
    await adding.getByLabel('Name for the new passkey').fill('This laptop');
    await adding.getByLabel('Password').fill(PASSWORD);
    await adding.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForURL(/passkey_added/);
    assert.match(await page.locator('#second-factors').textContent(), /This laptop/);
    await shot(page, '16-passkey-added');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(/\/account\/security/);
    const current = page.locator('#sessions tr', { hasText: 'This session' });
    assert.equal(await current.locator('td').nth(2).textContent(), 'passkey', 'the passkey alone');
  }));

test('an auditor granted by an administrator reads the log, a history, the state at an instant and the chain', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await register(page, warden, 'admin@example.com');
    await register(page, warden, 'carol@example.com');
    await register(page, warden, 'bob@example.com');
    warden.admin('admin@example.com');
    // Bob mistypes twice and signs in.
    for (const wrong of ['nope one', 'nope two']) await api(warden, 'POST', '/v1/sessions', { email: 'bob@example.com', password: wrong });
    const bob = await api(warden, 'POST', '/v1/sessions', { email: 'bob@example.com', password: PASSWORD });
    assert.equal(bob.status, 201);

    // Carol is no auditor yet: the pages refuse her.
    await signIn(page, warden, 'carol@example.com');
    await page.waitForURL(/\/account\/security/);
    const refused = await page.goto(`${warden.url}/account/audit`);
    assert.equal(refused.status(), 403);
    assert.match(await page.locator('body').textContent(), /auditor_required/);

    const admin = await api(warden, 'POST', '/v1/sessions', { email: 'admin@example.com', password: PASSWORD });
    const carol = await api(warden, 'GET', '/v1/me', undefined, (await api(warden, 'POST', '/v1/sessions', { email: 'carol@example.com', password: PASSWORD })).body.token);
    const granted = await api(warden, 'POST', `/v1/admin/accounts/${carol.body.id}/auditor`, {}, admin.body.token);
    assert.equal(granted.status, 204);

    await page.goto(`${warden.url}/account/security`);
    await page.getByRole('link', { name: 'open the audit pages' }).click();
    assert.match(await page.locator('#chart-totals').textContent(), /failed checks 2/);
    assert.equal(await page.locator('figure.chart svg polyline').count(), 4);
    await shot(page, '17-audit-log');
    await accessible(page);

    await page.getByLabel('Action').fill('account.password.check_failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    const rows = page.locator('main table tbody tr');
    assert.equal(await rows.count(), 2);
    const exported = await page.request.get(warden.url + await page.getByRole('link', { name: /Export these entries/ }).getAttribute('href'));
    const lines = (await exported.text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.action), ['account.password.check_failed', 'account.password.check_failed']);

    await rows.first().locator('td').nth(4).getByRole('link').click();
    await page.waitForURL(/\/account\/audit\/accounts\//);
    assert.match(await page.locator('ol.timeline').textContent(), /account\.registered/);
    const now = new Date(Date.now() + 60_000).toISOString().slice(0, 16);
    await page.getByLabel('Date and time (UTC)').fill(now);
    await page.getByRole('button', { name: 'Show the state' }).click();
    assert.match(await page.locator('#state-at').textContent(), /Live sessions1/);
    await shot(page, '18-account-history');
    await accessible(page);

    await page.getByRole('link', { name: 'Chain verification' }).click();
    assert.match(await page.locator('#chain-status').textContent(), /The chain verifies/);
    await shot(page, '19-audit-chain');

    // Taken back: refused on the next page.
    await api(warden, 'DELETE', `/v1/admin/accounts/${carol.body.id}/auditor`, undefined, admin.body.token);
    assert.equal((await page.goto(`${warden.url}/account/audit`)).status(), 403);
  }));

/** Makes `email` an administrator and has them configure `provider` as "Test ID". */
async function configureProvider(warden, provider, email) {
  warden.admin(email);
  const admin = await api(warden, 'POST', '/v1/sessions', { email, password: PASSWORD });
  const configured = await api(warden, 'POST', '/v1/admin/identity-providers', {
    name: 'Test ID', issuer: provider.issuer, client_id: 'warden-pages',
    client_secret: 'pages-client-secret', create_accounts: true,
  }, admin.body.token);
  assert.equal(configured.status, 201, JSON.stringify(configured.body));
}

test('"Sign in with …" on the sign-in page goes through the provider\'s own login and consent to a session of method sso', () =>
  withWarden(async (warden, browser) => {
    const provider = await startProvider(warden, 'warden-pages', 'pages-client-secret');
    try {
      const page = await browser.newPage();
      await register(page, warden, 'admin@example.com');
      await configureProvider(warden, provider, 'admin@example.com');

      await page.goto(`${warden.url}/account/sign-in`);
      await shot(page, '20-sign-in-with-sso');
      await page.getByRole('link', { name: 'Sign in with Test ID' }).click();
      await page.waitForURL(new RegExp(`^${provider.issuer}`));
      await page.locator('input[name="login"]').fill('grace@example.com');
      await page.locator('input[name="password"]').fill('anything');
      await page.getByRole('button', { name: /sign-in/i }).click();
      await page.getByRole('button', { name: /continue/i }).click();
      await page.waitForURL(/\/account\/security/);
      assert.match(await page.locator('p.who').textContent(), /grace@example\.com/);
      const current = page.locator('#sessions tr', { hasText: 'This session' });
      assert.equal(await current.locator('td').nth(2).textContent(), 'single sign-on');
      // The provider is her only way in: unlinking it is refused, in its section.
      const providers = page.locator('#providers');
      assert.match(await providers.textContent(), /Test ID/);
      await providers.getByRole('button', { name: 'Unlink' }).click();
      assert.match(await page.locator('#providers .error.banner').textContent(), /no way to sign in/);
    } finally {
      provider.stop();
    }
  }));

test('a provider sign-in someone else started does not sign this browser in (no login CSRF)', () =>
  withWarden(async (warden, browser) => {
    const provider = await startProvider(warden, 'warden-pages', 'pages-client-secret');
    try {
      const admin = await api(warden, 'POST', '/v1/accounts', { email: 'admin@example.com', password: PASSWORD });
      assert.equal(admin.status, 201, JSON.stringify(admin.body));
      await configureProvider(warden, provider, 'admin@example.com');

      // Mallory signs in at the provider in her own browser and keeps the address Warden
      // would have sent her browser back to, login code and all.
      const mallory = await browser.newPage();
      // The last hop of a redirect chain is stopped with the DevTools protocol's Fetch domain
      // (Playwright's own routing sees only a chain's first request).
      let trap;
      const cdp = await mallory.context().newCDPSession(mallory);
      await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/account/sso?attempt=*' }] });
      cdp.on('Fetch.requestPaused', (paused) => {
        trap = paused.request.url;
        cdp.send('Fetch.failRequest', { requestId: paused.requestId, errorReason: 'Aborted' });
      });
      await mallory.goto(`${warden.url}/account/sign-in`);
      await mallory.getByRole('link', { name: 'Sign in with Test ID' }).click();
      await mallory.waitForURL(new RegExp(`^${provider.issuer}`));
      await mallory.locator('input[name="login"]').fill('mallory@example.com');
      await mallory.locator('input[name="password"]').fill('anything');
      await mallory.getByRole('button', { name: /sign-in/i }).click();
      await mallory.getByRole('button', { name: /continue/i }).click().catch(() => {});
      for (let i = 0; i < 100 && !trap; i += 1) await new Promise((r) => setTimeout(r, 50));
      assert.match(trap ?? '', /login_code=/, 'the provider sent Mallory back with a login code');

      // Victor opens that address (a link in a mail, an image, a frame): he is not signed in.
      const victor = await browser.newPage();
      const opened = await victor.goto(trap);
      assert.equal(opened.status(), 422);
      assert.equal((await opened.json()).code, 'sso_attempt_invalid');
      await shot(victor, '21-sso-code-from-another-browser');
      await victor.goto(`${warden.url}/account/security`);
      assert.match(victor.url(), /\/account\/sign-in$/, 'Victor is still signed out');

      // In the browser that started it, the same address signs in: the code was good.
      await cdp.send('Fetch.disable');
      await mallory.goto(trap);
      await mallory.waitForURL(/\/account\/security/);
      assert.match(await mallory.locator('p.who').textContent(), /mallory@example\.com/);
    } finally {
      provider.stop();
    }
  }));

/** The code in the newest of `count` mails "Your Warden code". */
async function mailedCode(warden, count) {
  const mails = await mailsAbout(warden, 'Your Warden code', count);
  return mails[count - 1].match(/Your Warden code is:\s+(\d{6})/)[1];
}

test('changing the password, emailed codes on and used to sign in, and the reporting PIN', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await register(page, warden, 'ada@example.com');
    await signIn(page, warden, 'ada@example.com');
    const password = page.locator('#password');
    await password.getByLabel('Current password').fill('not it at all');
    await password.getByLabel('New password').fill('a second horse staple');
    await password.getByRole('button', { name: 'Change password' }).click();
    assert.match(await page.locator('#f-current_password-error').textContent(), /current password is wrong/);
    await password.getByLabel('Current password').fill(PASSWORD);
    await password.getByLabel('New password').fill('a second horse staple');
    await password.getByRole('button', { name: 'Change password' }).click();
    assert.match(await notice(page), /password is changed/);

    await page.getByRole('button', { name: 'Turn on emailed codes' }).click();
    await page.getByLabel('Code from the email').fill(await mailedCode(warden, 1));
    await page.getByRole('button', { name: 'Turn on emailed codes' }).click();
    assert.equal(await notice(page), 'Emailed codes are on.');

    const pin = page.locator('#pin');
    await pin.getByLabel('New PIN').fill('12');
    await pin.getByLabel('Password').fill('a second horse staple');
    await pin.getByRole('button', { name: 'Set the PIN' }).click();
    assert.match(await page.locator('#f-pin-pin-error').textContent(), /4 to 8 digits/);
    await pin.getByLabel('New PIN').fill('4821');
    await pin.getByLabel('Password').fill('a second horse staple');
    await pin.getByRole('button', { name: 'Set the PIN' }).click();
    assert.equal(await notice(page), 'Your reporting PIN is set.');
    await pin.getByLabel('PIN, to unlock reporting history').fill('4821');
    await pin.getByRole('button', { name: 'Unlock' }).click();
    assert.match(await page.locator('#pin').textContent(), /unlocked for this session until \d{4}-/);
    await shot(page, '21-pin-unlocked');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, warden, 'ada@example.com', 'a second horse staple');
    await page.waitForURL(/second-step/);
    await page.getByRole('button', { name: 'Email me a code' }).click();
    assert.match(await notice(page), /on its way/);
    await page.getByLabel('Code from the email').fill(await mailedCode(warden, 2));
    await page.locator('section', { hasText: 'Emailed code' }).getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(/\/account\/security/);
    const current = page.locator('#sessions tr', { hasText: 'This session' });
    assert.equal(await current.locator('td').nth(2).textContent(), 'password and emailed code');
  }));

test('a locked account asks for access from the sign-in page, and signs in once an administrator approves', () =>
  withWarden(async (warden, browser) => {
    const page = await browser.newPage();
    await register(page, warden, 'admin@example.com');
    await register(page, warden, 'ada@example.com');
    warden.admin('admin@example.com');
    for (let i = 0; i < 10; i += 1) {
      await api(warden, 'POST', '/v1/sessions', { email: 'ada@example.com', password: `guess ${i}` });
    }

    await signIn(page, warden, 'ada@example.com');
    assert.match(await page.locator('.error.banner').textContent(), /locked/);
    await page.getByRole('link', { name: 'Ask for access' }).click();
    assert.equal(await page.getByLabel('Email').inputValue(), 'ada@example.com');
    await page.getByLabel('What happened').fill('Someone guessed at my password; it was not me.');
    await shot(page, '22-ask-for-access');
    await accessible(page);
    await page.getByRole('button', { name: 'Send the request' }).click();
    assert.match(await notice(page), /request is recorded/);

    const admin = await api(warden, 'POST', '/v1/sessions', { email: 'admin@example.com', password: PASSWORD });
    const requests = await api(warden, 'GET', '/v1/admin/access-requests', undefined, admin.body.token);
    const [request] = requests.body.access_requests;
    assert.match(request.reason, /not me/);
    const approved = await api(warden, 'POST', `/v1/admin/access-requests/${request.id}/approve`, {}, admin.body.token);
    assert.ok(approved.status < 300, JSON.stringify(approved));

    await signIn(page, warden, 'ada@example.com');
    await page.waitForURL(/\/account\/security/);
  }));
