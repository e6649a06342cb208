// The page a person uses: password sign-in, adding a passkey (WebAuthn create), signing in with
// the passkey alone (WebAuthn get), logging out. It calls Warden's REST API on the same origin.
let token = null;

async function api(method, path, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

function show(text, refused = false) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.className = refused ? 'refused' : '';
}

async function listPasskeys() {
  const list = document.getElementById('passkeys');
  list.replaceChildren();
  const answer = await api('GET', '/v1/me/passkeys');
  for (const passkey of answer.body?.passkeys ?? []) {
    const item = document.createElement('li');
    item.textContent = `${passkey.name} — added ${new Date(passkey.created_at).toLocaleString()}`;
    list.append(item);
  }
}

async function whoAmI(how) {
  const sessions = await api('GET', '/v1/me/sessions');
  const current = sessions.body?.sessions?.find((s) => s.current);
  show(`Signed in ${how} (session method: ${current?.method ?? 'unknown'}).`);
  await listPasskeys();
}

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const answer = await api('POST', '/v1/sessions', {
    email: document.getElementById('email').value,
    password: document.getElementById('password').value,
  });
  if (answer.status === 201) {
    token = answer.body.token;
    await whoAmI('with your password');
  } else if (answer.body?.status === 'mfa_enrollment_required') {
    token = answer.body.token;
    show('Your workspace requires a second factor: add a passkey to continue.');
  } else if (answer.body?.status === 'mfa_required') {
    show(`A second step is needed: ${answer.body.methods.join(', ')}.`);
  } else {
    show(answer.body?.detail ?? `Sign-in failed (${answer.status}).`, true);
  }
});

document.getElementById('add').addEventListener('submit', async (event) => {
  event.preventDefault();
  const options = await api('POST', '/v1/me/passkeys/registration', {
    password: document.getElementById('confirm-password').value,
  });
  if (options.status !== 200) {
    show(options.body?.detail ?? 'Could not start adding a passkey.', true);
    return;
  }
  try {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.body.publicKey);
    const credential = await navigator.credentials.create({ publicKey });
    const added = await api('POST', '/v1/me/passkeys/registration/finish', {
      credential: credential.toJSON(),
      name: document.getElementById('passkey-name').value,
    });
    if (added.status === 201) {
      show(`Passkey “${added.body.name}” added.`);
      await listPasskeys();
    } else {
      show(added.body?.detail ?? 'The passkey was not added.', true);
    }
  } catch (error) {
    show(`The passkey was not added: ${error.name}.`, true);
  }
});

document.getElementById('passkey-sign-in').addEventListener('click', async () => {
  const options = await api('POST', '/v1/sessions/passkey/options', {});
  try {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.body.publicKey);
    const credential = await navigator.credentials.get({ publicKey });
    const answer = await api('POST', '/v1/sessions/passkey', { credential: credential.toJSON() });
    if (answer.status === 201) {
      token = answer.body.token;
      await whoAmI('with your passkey');
    } else {
      show(answer.body?.detail ?? `Passkey sign-in refused (${answer.status}).`, true);
    }
  } catch (error) {
    show(`Passkey sign-in did not complete: ${error.name}. Try again, or sign in with your password.`, true);
  }
});

document.getElementById('log-out').addEventListener('click', async () => {
  await api('DELETE', '/v1/sessions/current');
  token = null;
  document.getElementById('passkeys').replaceChildren();
  show('Signed out.');
});
