// Two-step verification on the account page: the second step of a sign-in
// (a TOTP code, a recovery code or a passkey, as the answer's methods
// offer), setting up an authenticator app (QR
// code and key, confirmed by a first code), the recovery codes (shown once,
// with a download), turning it off, new codes, and the prompt that proves
// it's you again when an action answers reauthentication_required.
// Its requests go through app.js's client (the browser SDK).

import { client, SessiondError, $, show, sayError, busy, announce, showAccount, signedOut, ENDED } from './app.js';

// ---- The sign-in step -----------------------------------------------------

let mfaPending = null; // {token, email}: the open second step of a sign-in

const passkeysWork = typeof window.PublicKeyCredential === 'function' &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';

// mfaLoginStep shows the second step of a sign-in: step is what
// client.signIn answered ({mfaToken, methods}).
export function mfaLoginStep(step, email) {
  mfaPending = { token: step.mfaToken, email };
  const methods = step.methods;
  const codes = methods.includes('totp');
  const passkey = methods.includes('passkey');
  useRecovery(false);
  setMFAError('mfa-login-error', null);
  setPasskeyStepError(null);
  $('mfa-login-form').hidden = !codes;
  $('mfa-login-toggle-field').hidden = !codes;
  $('mfa-login-passkey-field').hidden = !passkey;
  show('view-mfa', 'mfa-login-title');
  if (codes) $('mfa-login-code').focus();
  else $('mfa-login-passkey').focus();
  if (passkey && !passkeysWork) {
    setPasskeyStepError({ message: codes
      ? "This browser can't use passkeys; enter a code instead."
      : "This account's second step is a passkey, and this browser can't use passkeys. Try another browser." });
  }
}

function setPasskeyStepError(e) {
  const el = $('mfa-login-passkey-error');
  let text = '';
  if (e && e.name === 'NotAllowedError') text = 'The passkey request was cancelled or timed out.';
  else if (e && e.code === 'invalid_credentials') text = "That passkey didn't work: " + e.message;
  else if (e && e.code !== undefined) text = sayMFAError(e);
  else if (e) text = e.message || 'Something went wrong with the passkey. Try again.';
  el.textContent = text;
  el.hidden = !e;
}

function useRecovery(on) {
  $('mfa-login-code-field').hidden = on;
  $('mfa-login-recovery-field').hidden = !on;
  $('mfa-login-toggle').textContent = on ? 'Use the code from your app instead' : 'Use a recovery code instead';
}

function sayMFAError(e) {
  switch (e.code) {
    case 'invalid_credentials':
      return "That code isn't right, or was used already. Try the app's next code.";
    case 'invalid_token':
      return 'This sign-in took too long or had too many tries. Start over.';
    case 'invalid_request':
      return e.message || 'Enter the code.';
  }
  return sayError(e);
}

function setMFAError(id, e) {
  const el = $(id);
  el.textContent = e ? sayMFAError(e) : '';
  el.hidden = !e;
}

async function finishMFALogin() {
  const recovery = !$('mfa-login-recovery-field').hidden;
  const factor = { mfaToken: mfaPending.token };
  if (recovery) factor.recoveryCode = $('mfa-login-recovery').value.trim();
  else factor.code = $('mfa-login-code').value.replace(/\s+/g, '');
  await client.completeMfa(factor);
  await mfaSignedIn();
}

// finishMFAWithPasskey is the passkey's way through the second step: a
// ceremony begun with the mfa_token, for this account's passkeys.
async function finishMFAWithPasskey() {
  await client.completeMfa({ mfaToken: mfaPending.token, passkey: true });
  await mfaSignedIn();
}

async function mfaSignedIn() {
  const email = mfaPending.email;
  mfaPending = null;
  $('mfa-login-form').reset();
  $('signin-notice').hidden = true;
  await showAccount(true);
  announce('Signed in as ' + email + '.');
}

// ---- The account section ------------------------------------------------

let mfaStatus = { totp: false, recovery_codes_left: 0 };

export async function renderMFA() {
  mfaStatus = await client.mfa();
  const on = mfaStatus.totp;
  $('mfa-state').textContent = on
    ? 'On: signing in asks for a code from your authenticator app. ' + mfaStatus.recovery_codes_left + ' recovery codes left.'
    : 'Off. Add a code from an authenticator app to every sign-in, so a stolen password is not enough.';
  $('mfa-setup').hidden = on;
  $('mfa-disable').hidden = !on;
  $('mfa-regenerate').hidden = !on;
}

// withStepUp runs action; when it answers reauthentication_required, it
// asks the person to prove it's them (their password, or with two-step
// verification on, a code), reauthenticates, and runs it once more.
async function withStepUp(action) {
  setMFAError('mfa-error', null);
  try {
    return await action();
  } catch (e) {
    if (e.code !== 'reauthentication_required') throw e;
    await stepUp();
    return action();
  }
}

function stepUp() {
  const form = $('mfa-stepup');
  const code = mfaStatus.totp;
  $('mfa-stepup-why').textContent = code
    ? 'Enter a code from your authenticator app to confirm it\u2019s you.'
    : 'Enter your password to confirm it\u2019s you.';
  $('mfa-stepup-password-field').hidden = code;
  $('mfa-stepup-code-field').hidden = !code;
  form.reset();
  form.hidden = false;
  (code ? $('mfa-stepup-code') : $('mfa-stepup-password')).focus();
  return new Promise((resolve, reject) => {
    const done = () => { form.hidden = true; form.onsubmit = null; $('mfa-stepup-cancel').onclick = null; };
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const body = code
        ? { code: $('mfa-stepup-code').value.replace(/\s+/g, '') }
        : { password: $('mfa-stepup-password').value };
      try {
        await client.reauthenticate(body);
        done();
        resolve();
      } catch (e) {
        setMFAError('mfa-error', e);
      }
    };
    $('mfa-stepup-cancel').onclick = () => { done(); reject(new SessiondError(0, { code: 'cancelled', detail: 'Cancelled.' })); };
  });
}

function mfaFailed(e) {
  if (e.code === 'cancelled') return;
  if (ENDED.includes(e.code) && e.code !== 'invalid_token') return signedOut(e);
  setMFAError('mfa-error', e);
}

async function beginSetup() {
  const enrol = await withStepUp(() => client.enrollTotp());
  $('mfa-qr').src = enrol.qr_code;
  $('mfa-secret').textContent = enrol.secret;
  $('mfa-enrol').hidden = false;
  $('mfa-setup').hidden = true;
  $('mfa-confirm-code').focus();
}

async function confirmSetup() {
  const code = $('mfa-confirm-code').value.replace(/\s+/g, '');
  const r = await client.confirmTotp({ code });
  $('mfa-enrol').hidden = true;
  $('mfa-confirm-form').reset();
  showCodes(r.recovery_codes);
  await renderMFA();
  announce('Two-step verification is on.');
}

let codesURL = null;

// showCodes lists the recovery codes once, with a download of them as a
// text file (a Blob URL: nothing leaves the page).
function showCodes(codes) {
  const ol = $('mfa-codes');
  ol.replaceChildren(...codes.map((c) => {
    const li = document.createElement('li');
    const code = document.createElement('code');
    code.textContent = c;
    li.append(code);
    return li;
  }));
  if (codesURL) URL.revokeObjectURL(codesURL);
  const text = 'sessiond recovery codes for ' + $('who-email').textContent + '\n' +
    'Each works once, in place of a code from your app.\n\n' + codes.join('\n') + '\n';
  codesURL = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  $('mfa-download').href = codesURL;
  $('mfa-codes-box').hidden = false;
  $('mfa-codes-box').scrollIntoView({ block: 'nearest' });
}

function hideCodes() {
  $('mfa-codes').replaceChildren();
  if (codesURL) URL.revokeObjectURL(codesURL);
  codesURL = null;
  $('mfa-download').removeAttribute('href');
  $('mfa-codes-box').hidden = true;
}

async function disableTOTP() {
  await withStepUp(() => client.disableTotp());
  hideCodes();
  await renderMFA();
  announce('Two-step verification is off.');
}

async function regenerateCodes() {
  const r = await withStepUp(() => client.regenerateRecoveryCodes());
  showCodes(r.recovery_codes);
  await renderMFA();
  announce('New recovery codes; the old ones no longer work.');
}

export function mfaInit() {
  $('mfa-login-toggle').addEventListener('click', () => {
    useRecovery($('mfa-login-recovery-field').hidden);
    setMFAError('mfa-login-error', null);
    (!$('mfa-login-recovery-field').hidden ? $('mfa-login-recovery') : $('mfa-login-code')).focus();
  });
  $('mfa-login-cancel').addEventListener('click', () => {
    mfaPending = null;
    $('mfa-login-form').reset();
    show('view-signin', 'signin-title');
  });
  $('mfa-login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    busy(form, async () => {
      try {
        setMFAError('mfa-login-error', null);
        await finishMFALogin();
      } catch (e) {
        setMFAError('mfa-login-error', e);
        if (e.code === 'invalid_token') return;
        (!$('mfa-login-recovery-field').hidden ? $('mfa-login-recovery') : $('mfa-login-code')).select();
      }
    });
  });
  $('mfa-login-passkey').addEventListener('click', async () => {
    const btn = $('mfa-login-passkey');
    btn.disabled = true;
    setPasskeyStepError(null);
    try {
      await finishMFAWithPasskey();
    } catch (e) {
      setPasskeyStepError(e);
    } finally {
      btn.disabled = false;
    }
  });
  $('mfa-setup').addEventListener('click', () => beginSetup().catch(mfaFailed));
  $('mfa-confirm-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    confirmSetup().catch(mfaFailed);
  });
  $('mfa-codes-done').addEventListener('click', hideCodes);
  $('mfa-disable').addEventListener('click', () => disableTOTP().catch(mfaFailed));
  $('mfa-regenerate').addEventListener('click', () => regenerateCodes().catch(mfaFailed));
}
