// The account pages' one script: WebAuthn ceremonies (which only a script can drive), and
// copying or downloading what is shown once. It calls Warden's own /account endpoints with the
// page's CSRF token; the session they start is set as an HttpOnly cookie, never seen here.
'use strict';

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

async function call(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body ?? {}),
    credentials: 'same-origin',
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail ?? `Warden answered ${response.status}.`);
  return answer;
}

function refuse(error) {
  const place = document.getElementById('passkey-error');
  if (!place) return;
  place.textContent = error.name === 'NotAllowedError'
    ? 'The passkey was not used (cancelled, timed out, or not allowed). Try again or use another way.'
    : error.message;
  place.hidden = false;
}

// Signing in with a passkey, alone or as the second step.
async function signIn(button) {
  const options = await call(button.dataset.options);
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
  const credential = await navigator.credentials.get({ publicKey, mediation: options.mediation });
  const done = await call(button.dataset.finish, { credential: credential.toJSON() });
  window.location.assign(done.redirect);
}

// Adding a passkey from the settings page, after the password.
async function add(form) {
  const password = form.querySelector('[name="passkey_password"]').value;
  const name = form.querySelector('[name="passkey_name"]').value;
  const options = await call(form.dataset.options, { password });
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  const credential = await navigator.credentials.create({ publicKey });
  const done = await call(form.dataset.finish, { credential: credential.toJSON(), name });
  window.location.assign(done.redirect);
}

for (const id of ['passkey-sign-in', 'passkey-second-factor']) {
  const button = document.getElementById(id);
  button?.addEventListener('click', () => signIn(button).catch(refuse));
}
const adding = document.getElementById('passkey-add');
adding?.addEventListener('submit', (event) => {
  event.preventDefault();
  add(adding).catch(refuse);
});

function textOf(id) {
  const element = document.getElementById(id);
  const items = element.querySelectorAll('li');
  return items.length ? [...items].map((li) => li.textContent.trim()).join('\n') : element.textContent.trim();
}

for (const button of document.querySelectorAll('[data-copy]')) {
  button.addEventListener('click', async () => {
    await navigator.clipboard.writeText(textOf(button.dataset.copy));
    button.textContent = 'Copied';
  });
}
for (const button of document.querySelectorAll('[data-download]')) {
  button.addEventListener('click', () => {
    const file = new Blob([`${textOf(button.dataset.download)}\n`], { type: 'text/plain' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(file);
    link.download = button.dataset.filename;
    link.click();
    URL.revokeObjectURL(link.href);
  });
}
