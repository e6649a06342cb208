// What every journey of the account pages starts from: a fresh Warden (the built binary, its
// own database, mail directory and keys) on http://localhost:PORT, Debian's Chromium, and
// helpers that act as a person would — fill labelled fields, press buttons, read the mail.
import { spawn, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('../../../', import.meta.url).pathname;
const binary = process.env.WARDEN_BIN ?? join(root, 'target/debug/warden');
const server = process.env.WARDEN_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const shots = process.env.SHOTS ?? join(root, 'target/screenshots/account');
export const PASSWORD = 'correct horse battery staple';

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh Warden on its own database; `stop()` ends it. */
export async function startWarden() {
  const port = await freePort();
  const base = server.slice(0, server.lastIndexOf('/'));
  const name = `warden_test_${randomUUID().replaceAll('-', '')}`;
  execFileSync('psql', [`${base}/postgres`, '-qc', `CREATE DATABASE ${name}`]);
  const dir = await mkdtemp(join(tmpdir(), 'warden-pages-'));
  const mailDir = join(dir, 'mail');
  const url = `http://localhost:${port}`;
  const where = ['--database-url', `${base}/${name}`, '--data-dir', join(dir, 'data')];
  const child = spawn(binary, [
    'serve', ...where, '--addr', `127.0.0.1:${port}`, '--public-url', url, '--mail-dir', mailDir,
    '--client-attempts-per-minute', '100000',
  ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WARDEN_LOG: 'warn' } });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  for (let tries = 0; ; tries += 1) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (tries > 300 || child.exitCode !== null) throw new Error(`Warden did not start:\n${log}`);
    await sleep(100);
  }
  return {
    url,
    port,
    mailDir,
    stop: () => child.kill('SIGTERM'),
    log: () => log,
    // Makes an existing account a platform administrator, as an operator does.
    admin: (email) => execFileSync(binary, ['admin', 'create', '--email', email, ...where]),
  };
}

/** The messages Warden mailed so far with this subject, waiting up to 10 s for one. */
export async function mailsAbout(warden, subject, atLeast = 1) {
  for (let tries = 0; tries < 100; tries += 1) {
    const files = (await readdir(warden.mailDir).catch(() => [])).filter((f) => f.endsWith('.eml')).sort();
    const mails = [];
    for (const file of files) {
      const text = await readFile(join(warden.mailDir, file), 'utf8');
      if (text.includes(`Subject: ${subject}`)) mails.push(text.replaceAll('=\r\n', '').replaceAll('=3D', '='));
    }
    if (mails.length >= atLeast) return mails;
    await sleep(100);
  }
  throw new Error(`no mail about “${subject}”`);
}

export async function launch() {
  await mkdir(shots, { recursive: true });
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
}

/** A screenshot of what the person sees now, under target/screenshots/account/. */
export async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

const axeSource = await readFile(join(root, 'tests/browser/node_modules/axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations on the page as it is now. */
export async function accessibilityProblems(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

export async function register(page, warden, email, password = PASSWORD) {
  await page.goto(`${warden.url}/account/register`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Your name').fill('Ada Lovelace');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

export async function signIn(page, warden, email, password = PASSWORD) {
  await page.goto(`${warden.url}/account/sign-in`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/**
 * The test identity provider (oidc-provider with its login and consent forms, tests/idp) for
 * `warden`; `stop()` ends it.
 */
export async function startProvider(warden, clientId, clientSecret) {
  const port = await freePort();
  const child = spawn('node', [join(root, 'tests/idp/server.mjs'), String(port), clientId, clientSecret,
    `${warden.url}/v1/sso/callback`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((resolve, reject) => {
    child.once('exit', () => reject(new Error('the identity provider did not start')));
    child.stdout.on('data', (chunk) => { if (String(chunk).includes('ready')) resolve(); });
  });
  return { issuer: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

/** A call to Warden's REST API; answers the status and the JSON body. */
export async function api(warden, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${warden.url}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** The text of the page's status notice (what the last action did). */
export async function notice(page) {
  return (await page.locator('p.notice').first().textContent())?.trim();
}

/** A TOTP code as `oathtool` computes it, `offset` seconds from now. */
export function oathtool(secret, offset = 0) {
  const at = new Date(Date.now() + offset * 1000).toISOString().replace('T', ' ').slice(0, 19);
  return execFileSync('oathtool', ['--totp', '-b', '--now', `${at} UTC`, secret]).toString().trim();
}

/** What `zbarimg` reads from a screenshot of the QR code. */
export function decodeQr(path) {
  return execFileSync('zbarimg', ['--raw', '-q', path]).toString().trim();
}
