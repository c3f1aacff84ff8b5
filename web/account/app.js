// The account page: sign up, sign in, see where you're signed in and end
// sessions, and look after the account (its address, its password, its
// deletion); the links in account mail (/account/verify, /account/reset)
// open their own views of it. Its session is the browser SDK's
// (sessiond-browser.js, a copy of js/src/sessiond-browser.js): cookie mode,
// so the refresh token lives in an HttpOnly cookie no script can read and
// the access token in the SDK's memory only; one refresh for all of the
// page's tabs, and signing out in one signs out all; the session bound to a
// non-extractable key of this browser (DPoP), so a copied cookie is of no
// use elsewhere. Served from the same origin as the API. Organised by view:
// each has its open… (when it has a path of its own) and init… functions.
// mfa.js and passkey.js add the second factors and passkeys.

import { createClient, SessiondError } from './sessiond-browser.js';
import { mfaInit, mfaLoginStep, renderMFA } from './mfa.js';
import { passkeyInit } from './passkey.js';

export { SessiondError };

// ---- Device names from user agents --------------------------------------

// Order matters: Edge and Opera also say "Chrome", Chrome also says
// "Safari", so the more specific names are tried first.
const BROWSERS = [
  [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/\b(?:OPR|Opera)\/(\d+)/, 'Opera'],
  [/\bSamsungBrowser\/(\d+)/, 'Samsung Internet'],
  [/\bVivaldi\/(\d+)/, 'Vivaldi'],
  [/\bYaBrowser\/(\d+)/, 'Yandex Browser'],
  [/\b(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
  [/\bHeadlessChrome\/(\d+)/, 'Headless Chrome'],
  [/\b(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
  [/\bVersion\/(\d+)[.\d]* (?:Mobile\/\S+ )?Safari\//, 'Safari'],
  [/^curl\/(\d+)/, 'curl'],
  [/^Wget\/(\d+)/, 'Wget'],
  [/^Go-http-client\/(\d+)/, 'Go program'],
  [/^python-requests\/(\d+)/, 'Python program'],
  [/^okhttp\/(\d+)/, 'Android app'],
];

const SYSTEMS = [
  [/\bWindows NT 10\.0/, 'Windows'],
  [/\bWindows NT 6\.3/, 'Windows 8.1'],
  [/\bWindows NT 6\.1/, 'Windows 7'],
  [/\bWindows\b/, 'Windows'],
  [/\biPad\b/, 'iPadOS'],
  [/\b(?:iPhone|iPod)\b/, 'iOS'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bUbuntu\b/, 'Ubuntu'],
  [/\bFedora\b/, 'Fedora'],
  [/\bLinux\b/, 'Linux'],
];

// parseUA turns a User-Agent header into {browser, os, name}, where name is
// what a person recognises: "Chrome on Windows", "Safari on iOS".
function parseUA(ua) {
  ua = String(ua || '').trim();
  let browser = '';
  for (const [re, name] of BROWSERS) {
    if (re.test(ua)) { browser = name; break; }
  }
  let os = '';
  for (const [re, name] of SYSTEMS) {
    if (re.test(ua)) { os = name; break; }
  }
  let name;
  if (browser && os) name = browser + ' on ' + os;
  else if (browser) name = browser;
  else if (os) name = 'A browser on ' + os;
  else if (ua) name = ua.split(/[\s/]/)[0].slice(0, 40) || 'Unknown device';
  else name = 'Unknown device';
  return { browser, os, name };
}

// ---- Times in words -------------------------------------------------------

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [
  ['year', 365 * 24 * 3600], ['month', 30 * 24 * 3600], ['week', 7 * 24 * 3600],
  ['day', 24 * 3600], ['hour', 3600], ['minute', 60],
];

// relativeTime says when `then` was, from `now`: "just now", "2 minutes ago",
// "yesterday", "in 3 days".
function relativeTime(then, now = Date.now()) {
  const secs = Math.round((new Date(then).getTime() - now) / 1000);
  if (Math.abs(secs) < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(secs) >= size || unit === 'minute') {
      return rtf.format(Math.round(secs / size), unit);
    }
  }
  return 'just now';
}

// duration says a wait in words: "40 seconds", "3 minutes", "1 hour".
function duration(secs) {
  secs = Math.max(1, Math.ceil(secs));
  const plural = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
  if (secs < 60) return plural(secs, 'second');
  if (secs < 3600) return plural(Math.ceil(secs / 60), 'minute');
  return plural(Math.ceil(secs / 3600), 'hour');
}

// ---- The session ----------------------------------------------------------

// client holds the session: every call to the API goes through it.
export const client = createClient({ baseUrl: location.origin });

// ---- Errors in words ------------------------------------------------------

// The codes that mean this browser's session is over.
export const ENDED = ['invalid_refresh_token', 'refresh_token_reused', 'session_expired', 'invalid_token'];

const wait = (e) => 'Wait ' + (e.retryAfter ? duration(e.retryAfter) : 'a few minutes') + ' and try again.';

// SAY is what each error code means to a person. A form can say something
// more precise for a code (sayError's second argument); a code missing here
// is shown with the server's own detail.
const SAY = {
  invalid_credentials: "That email and password don't match. Check them and try again.",
  too_many_attempts: (e) => 'Too many attempts. ' + wait(e),
  rate_limited: (e) => 'Too many requests from here. ' + wait(e),
  email_taken: 'There is already an account with that email. Sign in instead.',
  invalid_email: "That doesn't look like an email address.",
  weak_password: (e) => 'Choose a stronger password: ' + e.message,
  invalid_request: 'Please fill in every field.',
  request_too_large: 'That is too long. Shorten it and try again.',
  invalid_link: 'This link has expired, was already used, or a newer one replaced it.',
  account_disabled: "This account has been disabled. Ask the service's operators why.",
  email_not_verified: 'Confirm your email address first: open the link in the mail we sent you.',
  reauthentication_required: 'For your safety, enter your password again to make this change.',
  mfa_required: 'This account needs its second factor to sign in.',
  unavailable: "The service can't reach its database right now. Try again in a moment.",
  network: "Can't reach the server. Check your connection and try again.",
  cross_site_request: (e) => 'This page is not allowed to sign you in: ' + e.message,
  cookie_mode_disabled: (e) => 'This page is not allowed to sign you in: ' + e.message,
  not_found: 'That session has already ended.',
};

export function sayError(e, own = {}) {
  let said = own[e.code] || SAY[e.code];
  if (!said && ENDED.includes(e.code)) said = 'Your session has ended. Sign in again.';
  if (typeof said === 'function') said = said(e);
  return said || e.message || 'Something went wrong. Try again.';
}

// ---- Page helpers ---------------------------------------------------------

export const $ = (id) => document.getElementById(id);

// show makes one view (an element with data-view) the visible one.
export function show(view, focus) {
  for (const v of document.querySelectorAll('[data-view]')) v.hidden = v.id !== view;
  if (view !== 'view-account') $('passkeys-section').hidden = true;
  $('who').hidden = view !== 'view-account';
  if (focus) $(focus).focus();
}

export function setError(id, e, own) {
  const el = $(id);
  el.textContent = e ? sayError(e, own) : '';
  el.hidden = !e;
}

// notice shows a text in a notice paragraph, or hides it when text is empty.
function notice(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}

export function announce(text) {
  $('status').textContent = text;
}

// busy disables el's controls while f's request is in flight, then moves
// the focus to the element f returns (a disabled control cannot take it).
export async function busy(el, f) {
  const controls = el.querySelectorAll('input, button');
  controls.forEach((c) => { c.disabled = true; });
  let focus = null;
  try { focus = await f(); } finally { controls.forEach((c) => { c.disabled = false; }); }
  if (focus) focus.focus();
}

// onSubmit runs f for the form's submissions; an empty required field is
// pointed out without asking the server (an empty password would count
// as a failed attempt).
function onSubmit(formId, errorId, f) {
  const form = $(formId);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const empty = [...form.querySelectorAll('input[required]')].find((i) => !i.value.trim());
    if (empty) {
      setError(errorId, { code: 'invalid_request' });
      empty.focus();
      return;
    }
    setError(errorId, null);
    busy(form, () => f(form));
  });
}

// ---- Mail links -----------------------------------------------------------

// linkToken is the token of the mail link that opened the page. It sits in
// the fragment (#token=…), which a browser never sends, so opening the
// link, by a person or a mail scanner, is a plain page load: only the
// button on the page uses the token.
function linkToken() {
  return new URLSearchParams(location.hash.slice(1)).get('token') || '';
}

// forgetLink takes the used-up token out of the address bar and the
// history entry.
function forgetLink(path = location.pathname) {
  history.replaceState(null, '', path);
}

// A token the server refuses for good: asking again will not help.
const linkFinal = (e) => e.code === 'invalid_link' || e.code === 'invalid_request';

// ---- Sign in, sign up -------------------------------------------------------

// signedOut returns to the sign-in form, saying why: text, or the reason the
// session ended elsewhere.
export function signedOut(e, text) {
  clearAccount();
  let say = typeof text === 'string' ? text : '';
  if (!say && e && ENDED.includes(e.code)) say = 'You were signed out. Sign in again to continue.';
  else if (!say && e && e.status) say = sayError(e);
  notice('signin-notice', say);
  // The notice, when there is one, is the first thing to read.
  show('view-signin', say ? 'signin-notice' : 'signin-title');
}

// endedBy is why the session ended, as signedOut takes it: nothing to say
// when this browser's person ended it (in any tab) or there was none (a
// first visit), else the refresh's problem code.
const QUIET = ['signOut', 'signOutEverywhere', 'accountDeleted', 'no_session'];
const endedBy = (reason) => (QUIET.includes(reason) ? null : { code: reason, status: 401 });
let endReason = 'no_session';

// resume shows the account of the session the cookie holds, if any: a
// live tab's, or one refresh's.
async function resume() {
  let state;
  try {
    state = await client.restore();
  } catch (e) {
    // sessiond is out of reach; the SDK keeps trying, and onChange shows
    // the account once it is back.
    return signedOut(e);
  }
  if (state !== 'signedIn') return signedOut(endedBy(endReason));
  try { await showAccount(false); } catch (e) { handleAccountError(e); }
}

// Other tabs, and the SDK's own refreshes, change the session too: a page
// showing the account follows a sign-out; a page waiting at the sign-in
// form follows a sign-in elsewhere, or the session coming back after an
// outage. Views of mail links stay as they are.
function initSession() {
  client.onChange(({ state, reason }) => {
    if (state === 'signedOut') {
      endReason = reason;
      if (!$('view-account').hidden) signedOut(endedBy(reason));
    } else if ((reason === 'peer' || reason === 'restore') && !$('view-signin').hidden) {
      notice('signin-notice', '');
      showAccount(false).catch(handleAccountError);
    }
  });
}

// toSignIn leaves a mail link's path for the page's own, where a reload
// resumes the session instead of showing the link's view again.
function toSignIn() {
  if (location.pathname !== '/account/') {
    forgetLink('/account/');
    return resume();
  }
  show('view-signin', 'signin-title');
}

async function signIn(email, password) {
  const r = await client.signIn({ email, password });
  if (r.mfaRequired) return mfaLoginStep(r, email); // mfa.js
  notice('signin-notice', '');
  await showAccount(true);
  announce('Signed in as ' + email + '.');
}

function initSignIn() {
  $('to-signup').addEventListener('click', () => show('view-signup', 'signup-title'));
  $('to-signin').addEventListener('click', () => show('view-signin', 'signin-title'));
  $('to-forgot').addEventListener('click', () => openForgot($('signin-email').value.trim()));
  $('checkmail-signin').addEventListener('click', () => show('view-signin', 'signin-title'));

  onSubmit('signin-form', 'signin-error', async (form) => {
    const email = $('signin-email').value.trim();
    try {
      await signIn(email, $('signin-password').value);
      form.reset();
    } catch (e) {
      setError('signin-error', e);
      return $('signin-password');
    }
  });

  onSubmit('signup-form', 'signup-error', async (form) => {
    const email = $('signup-email').value.trim();
    const password = $('signup-password').value;
    let created;
    try {
      created = await client.signUp({ email, password });
    } catch (e) {
      setError('signup-error', e);
      return e.code === 'weak_password' ? $('signup-password') : $('signup-email');
    }
    form.reset();
    const inbox = 'We sent a link to ' + email + ' to confirm your address. Check your inbox.';
    // With confirmed addresses required, the answer is the same whether
    // or not the address already had an account, and signing in waits for
    // the link.
    if (created && created.status === 'verification_sent') {
      $('checkmail-email').textContent = email;
      show('view-checkmail', 'checkmail-title');
      return;
    }
    try {
      await signIn(email, password);
    } catch (e) {
      signedOut(e);
      return;
    }
    notice('account-notice', 'Your account is ready. ' + inbox);
    return $('account-notice');
  });
}

// ---- Forgotten password -----------------------------------------------------

function openForgot(email) {
  $('forgot-form').hidden = false;
  $('forgot-sent').hidden = true;
  setError('forgot-error', null);
  if (email) $('forgot-email').value = email;
  show('view-forgot', 'forgot-title');
}

function initForgot() {
  $('forgot-signin').addEventListener('click', toSignIn);
  $('forgot-again').addEventListener('click', () => { openForgot(); $('forgot-email').focus(); });
  onSubmit('forgot-form', 'forgot-error', async () => {
    const email = $('forgot-email').value.trim();
    try {
      await client.forgotPassword({ email });
    } catch (e) {
      setError('forgot-error', e);
      return $('forgot-email');
    }
    // The same words whatever the address: the service never says
    // whether an account has it, and neither does the page.
    const text = 'If an account exists for ' + email + ', we sent a link to it to choose a new password.';
    $('forgot-sent-text').textContent = text;
    $('forgot-form').hidden = true;
    $('forgot-sent').hidden = false;
    return $('forgot-sent-text');
  });
}

// ---- Confirming an address (/account/verify#token=…) ------------------------

let verifyToken = '';

function openVerify() {
  verifyToken = linkToken();
  $('verify-ask').hidden = !verifyToken;
  $('verify-done').hidden = true;
  notice('verify-final', verifyToken ? '' : 'This link is incomplete. Open it again from the mail, or copy all of it into the address bar.');
  show('view-verify', 'verify-title');
}

function initVerify() {
  $('verify-submit').addEventListener('click', () => busy($('verify-ask'), async () => {
    setError('verify-error', null);
    try {
      await client.verifyEmail({ token: verifyToken });
    } catch (e) {
      if (!linkFinal(e)) {
        setError('verify-error', e, {
          email_taken: 'Another account has taken this address since the link was sent, so it cannot become yours.',
        });
        return $('verify-submit');
      }
      verifyToken = '';
      forgetLink();
      $('verify-ask').hidden = true;
      notice('verify-final', sayError(e, {
        invalid_link: 'This link has expired, was already used, or a newer one replaced it. Sign in to ask for a new one.',
      }));
      return $('verify-title');
    }
    verifyToken = '';
    forgetLink();
    $('verify-ask').hidden = true;
    $('verify-done').hidden = false;
    return $('verify-done-text');
  }));
}

// ---- Choosing a new password (/account/reset#token=…) -----------------------

let resetToken = '';

function openReset() {
  resetToken = linkToken();
  $('reset-form').hidden = !resetToken;
  notice('reset-final', resetToken ? '' : 'This link is incomplete. Open it again from the mail, or ask for a new one.');
  show('view-reset', 'reset-title');
}

function initReset() {
  $('reset-forgot').addEventListener('click', () => {
    resetToken = '';
    forgetLink('/account/forgot');
    openForgot();
  });
  onSubmit('reset-form', 'reset-error', async (form) => {
    const password = $('reset-password').value;
    if (password !== $('reset-confirm').value) {
      $('reset-error').textContent = "The two passwords don't match. Type the new one twice.";
      $('reset-error').hidden = false;
      return $('reset-confirm');
    }
    try {
      await client.resetPassword({ token: resetToken, newPassword: password });
    } catch (e) {
      if (!linkFinal(e)) {
        setError('reset-error', e);
        return $('reset-password');
      }
      resetToken = '';
      forgetLink();
      form.reset();
      form.hidden = true;
      notice('reset-final', sayError(e, {
        invalid_link: 'This reset link has expired, was already used, or a newer one replaced it.',
      }));
      return $('reset-title');
    }
    resetToken = '';
    form.reset();
    // Every session ended with the reset, this browser's too.
    forgetLink('/account/');
    signedOut(null, 'Password changed — sign in with your new password.');
  });
}

// ---- The account: sessions, address, password, deletion --------------------

let me = null; // GET /v1/me

export async function showAccount(focus) {
  const [who, list] = await Promise.all([client.me(), client.sessions()]);
  me = who;
  $('who-email').textContent = me.email;
  renderEmail(me);
  renderSessions(list);
  setError('account-error', null);
  await renderMFA(); // mfa.js
  show('view-account', focus ? 'sessions-title' : null);
  // Other parts of the page (passkey.js) draw their sections on this.
  document.dispatchEvent(new CustomEvent('sessiond:account'));
}

// clearAccount forgets what the account view showed, so the next person at
// this browser sees nothing of it.
function clearAccount() {
  me = null;
  for (const f of $('view-account').querySelectorAll('form')) f.reset();
  for (const p of $('view-account').querySelectorAll('.error, .notice')) { p.textContent = ''; p.hidden = true; }
  $('sessions').replaceChildren();
  cancelDelete();
}

export function handleAccountError(e) {
  if (ENDED.includes(e.code)) return signedOut(e);
  setError('account-error', e);
}

function renderEmail(who) {
  $('email-address').textContent = who.email;
  const state = $('email-state');
  state.textContent = who.email_verified ? 'Confirmed' : 'Not confirmed';
  state.classList.toggle('unconfirmed', !who.email_verified);
  $('email-unconfirmed').hidden = who.email_verified;
}

function renderSessions(sessions) {
  const ul = $('sessions');
  ul.replaceChildren();
  // The current session first, then most recently used (the API's order).
  sessions.sort((a, b) => (b.current - a.current));
  for (const s of sessions) {
    const device = parseUA(s.user_agent);
    const li = document.createElement('li');
    li.className = 'session' + (s.current ? ' current' : '');
    li.dataset.sessionId = s.session_id;
    li.dataset.current = String(s.current);

    const info = document.createElement('div');
    info.className = 'info';
    const name = document.createElement('p');
    name.className = 'device';
    name.textContent = device.name;
    if (s.current) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'This device';
      name.append(' ', badge);
    }
    const meta = document.createElement('p');
    meta.className = 'meta';
    meta.append(
      'IP ' + (s.ip || 'unknown') + ' · Signed in ',
      timeEl(s.created_at),
      ' · Last active ',
      s.current ? 'now' : timeEl(s.last_used_at),
    );
    info.append(name, meta);
    li.append(info);

    if (!s.current) {
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'secondary';
      btn.textContent = 'Sign out';
      btn.setAttribute('aria-label', 'Sign out ' + device.name + ', IP ' + (s.ip || 'unknown'));
      btn.addEventListener('click', () => revoke(s, device, btn));
      li.append(btn);
    }
    ul.append(li);
  }
}

export function timeEl(iso) {
  const t = document.createElement('time');
  t.dateTime = iso;
  t.title = new Date(iso).toLocaleString();
  t.textContent = relativeTime(iso);
  return t;
}

async function revoke(s, device, btn) {
  btn.disabled = true;
  try {
    await client.endSession(s.session_id);
    announce('Signed out ' + device.name + '.');
  } catch (e) {
    if (e.code !== 'not_found') {
      btn.disabled = false;
      return handleAccountError(e);
    }
  }
  try { await showAccount(false); } catch (e) { handleAccountError(e); }
  $('sessions-title').focus();
}

async function signOutHere() {
  await client.signOut(); // every tab of this page follows
  signedOut(null);
  announce('You are signed out.');
}

async function signOutEverywhere() {
  try {
    await client.signOutEverywhere();
  } catch (e) {
    return handleAccountError(e);
  }
  signedOut(null);
  announce('You are signed out everywhere.');
}

async function resendVerification() {
  const btn = $('email-resend');
  setError('email-resend-error', null);
  notice('email-notice', '');
  await busy(btn.parentElement, async () => {
    try {
      await client.resendVerification();
    } catch (e) {
      if (ENDED.includes(e.code)) return signedOut(e);
      setError('email-resend-error', e);
      return btn;
    }
    const text = 'We sent a new link to ' + me.email + '. The one before no longer works.';
    notice('email-notice', text);
    return $('email-notice');
  });
}

// Wrong passwords in the account's forms are the person's own password.
const OWN_PASSWORD = { invalid_credentials: "That isn't your password. Check it and try again." };

function cancelDelete() {
  $('delete-confirm').hidden = true;
  $('delete-start').hidden = false;
}

async function deleteAccount() {
  await busy($('delete-form'), async () => {
    try {
      await client.deleteAccount({ password: $('delete-password').value });
    } catch (e) {
      if (ENDED.includes(e.code)) return signedOut(e);
      cancelDelete();
      setError('delete-error', e, { invalid_credentials: "That isn't your password. Your account is still here." });
      return $('delete-password');
    }
    // The session went with the account, in every tab.
    signedOut(null, 'Your account has been deleted.');
  });
}

function initAccount() {
  $('signout-here').addEventListener('click', signOutHere);
  $('signout-everywhere').addEventListener('click', signOutEverywhere);
  $('email-resend').addEventListener('click', resendVerification);

  onSubmit('email-form', 'email-error', async (form) => {
    const email = $('email-new').value.trim();
    notice('email-notice', '');
    try {
      await client.changeEmail({ password: $('email-password').value, newEmail: email });
    } catch (e) {
      if (ENDED.includes(e.code)) return signedOut(e);
      setError('email-error', e, { ...OWN_PASSWORD, invalid_email: (e) => "That address can't be used: " + e.message });
      return e.code === 'invalid_credentials' ? $('email-password') : $('email-new');
    }
    form.reset();
    const text = 'Check your new inbox: we sent a link to ' + email + '. Your address changes once you open it; until then it stays ' + me.email + '.';
    notice('email-notice', text);
    return $('email-notice');
  });

  onSubmit('password-form', 'password-error', async (form) => {
    notice('password-notice', '');
    try {
      await client.changePassword({ currentPassword: $('password-current').value, newPassword: $('password-new').value });
    } catch (e) {
      if (ENDED.includes(e.code)) return signedOut(e);
      setError('password-error', e, OWN_PASSWORD);
      return e.code === 'weak_password' ? $('password-new') : $('password-current');
    }
    form.reset();
    const text = 'Your password is changed. Every other device was signed out.';
    notice('password-notice', text);
    try { await showAccount(false); } catch (e) { handleAccountError(e); }
    return $('password-notice');
  });

  // The first press only asks; the account goes with the second, explicit one.
  onSubmit('delete-form', 'delete-error', async () => {
    $('delete-start').hidden = true;
    $('delete-confirm').hidden = false;
    return $('delete-confirm-text');
  });
  $('delete-cancel').addEventListener('click', () => { cancelDelete(); $('delete-password').focus(); });
  $('delete-final').addEventListener('click', deleteAccount);

  // Coming back to the tab shows the account as it is now.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && client.state === 'signedIn' && !$('view-account').hidden) {
      showAccount(false).catch(handleAccountError);
    }
  });
}

// ---- Start ------------------------------------------------------------------

// The views that mail links open, by path; every other path under /account/
// is the page's own: the account of the session the cookie holds, if any.
const LINKS = {
  '/account/verify': openVerify,
  '/account/reset': openReset,
  '/account/forgot': () => openForgot(),
};

function init() {
  initSession();
  initSignIn();
  initForgot();
  initVerify();
  initReset();
  initAccount();
  mfaInit();
  passkeyInit();
  const open = LINKS[location.pathname];
  if (open) open();
  else resume();
}

// For tests of the parsers in a real browser.
window.sessiondAccount = { parseUA, relativeTime, duration, sayError };

init();
