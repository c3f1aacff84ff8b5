// Passkeys on the account page: "Sign in with a passkey" on the sign-in
// view, and adding, renaming and removing passkeys when signed in. It runs
// on app.js's client (the browser SDK), whose ceremonies use the browser's
// own JSON forms (PublicKeyCredential.parseCreationOptionsFromJSON,
// parseRequestOptionsFromJSON, credential.toJSON()), which are exactly what
// the API sends and takes, so no base64 juggling happens anywhere.

import { client, $, showAccount, announce, sayError, timeEl } from './app.js';

const supported = typeof window.PublicKeyCredential === 'function' &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';

function sayPasskeyError(e) {
  if (e && e.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
  if (e && e.name === 'InvalidStateError') return 'This device already has a passkey for your account.';
  switch (e && e.code) {
    case 'reauthentication_required':
      return 'For your security, sign out and sign in again before changing your passkeys.';
    case 'invalid_credentials':
      return "That passkey didn't work: " + e.message;
    case 'invalid_request':
      return e.message || 'The passkey was not accepted.';
    case 'account_disabled':
      return 'This account has been disabled.';
  }
  if (e && e.code !== undefined) return sayError(e);
  return (e && e.message) || 'Something went wrong with the passkey. Try again.';
}

function showPasskeyError(id, e) {
  const el = $(id);
  el.textContent = e ? sayPasskeyError(e) : '';
  el.hidden = !e;
}

// ---- Sign in ------------------------------------------------------------

async function signInWithPasskey() {
  const btn = $('passkey-signin');
  btn.disabled = true;
  showPasskeyError('passkey-signin-error', null);
  try {
    await client.signInWithPasskey();
    $('signin-notice').hidden = true;
    await showAccount(true);
    announce('Signed in with a passkey.');
  } catch (e) {
    showPasskeyError('passkey-signin-error', e);
  } finally {
    btn.disabled = false;
  }
}

// ---- Manage -------------------------------------------------------------

async function renderPasskeys() {
  let list;
  try {
    list = await client.passkeys();
  } catch (e) {
    // 404: passkeys are off on this server; the section stays hidden.
    $('passkeys-section').hidden = true;
    if (e.status !== 404) throw e;
    return;
  }
  $('passkeys-section').hidden = false;
  const ul = $('passkeys');
  ul.replaceChildren();
  $('passkeys-empty').hidden = list.length > 0;
  for (const p of list) {
    const li = document.createElement('li');
    li.className = 'passkey';
    li.dataset.passkeyId = p.passkey_id;

    const info = document.createElement('div');
    info.className = 'info';
    const label = document.createElement('label');
    label.className = 'visually-hidden';
    label.htmlFor = 'passkey-name-' + p.passkey_id;
    label.textContent = 'Name of passkey';
    const name = document.createElement('input');
    name.id = 'passkey-name-' + p.passkey_id;
    name.className = 'passkey-name';
    name.value = p.name;
    name.maxLength = 64;
    const meta = document.createElement('p');
    meta.className = 'meta';
    meta.append('Added ', timeEl(p.created_at), ' · ',
      p.last_used_at ? 'Last used ' : 'Never used', p.last_used_at ? timeEl(p.last_used_at) : '');
    info.append(label, name, meta);

    const rename = document.createElement('button');
    rename.type = 'button';
    rename.className = 'secondary passkey-rename';
    rename.textContent = 'Rename';
    rename.addEventListener('click', () => renamePasskey(p, name, rename));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'danger passkey-remove';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', 'Remove passkey ' + p.name);
    remove.addEventListener('click', () => removePasskey(p, remove));
    li.append(info, rename, remove);
    ul.append(li);
  }
}

async function addPasskey() {
  const btn = $('passkey-add');
  btn.disabled = true;
  showPasskeyError('passkey-error', null);
  try {
    const added = await client.addPasskey({ name: $('passkey-new-name').value.trim() });
    $('passkey-new-name').value = '';
    await renderPasskeys();
    announce('Passkey "' + added.name + '" added.');
  } catch (e) {
    showPasskeyError('passkey-error', e);
  } finally {
    btn.disabled = false;
  }
}

async function renamePasskey(p, input, btn) {
  btn.disabled = true;
  showPasskeyError('passkey-error', null);
  try {
    const r = await client.renamePasskey(p.passkey_id, { name: input.value });
    announce('Passkey renamed to "' + r.name + '".');
    await renderPasskeys();
  } catch (e) {
    showPasskeyError('passkey-error', e);
  } finally {
    btn.disabled = false;
  }
}

async function removePasskey(p, btn) {
  btn.disabled = true;
  showPasskeyError('passkey-error', null);
  try {
    await client.removePasskey(p.passkey_id);
    announce('Passkey "' + p.name + '" removed.');
    await renderPasskeys();
  } catch (e) {
    btn.disabled = false;
    showPasskeyError('passkey-error', e);
  }
}

export function passkeyInit() {
  if (!supported) return; // the passkey controls stay hidden
  $('passkey-signin-box').hidden = false;
  $('passkey-signin').addEventListener('click', signInWithPasskey);
  $('passkey-add').addEventListener('click', addPasskey);
  // app.js announces every time the signed-in view is (re)drawn.
  document.addEventListener('sessiond:account', () => {
    renderPasskeys().catch((e) => showPasskeyError('passkey-error', e));
  });
}
