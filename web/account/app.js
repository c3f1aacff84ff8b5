// The account page: sign up, sign in, see where you're signed in and end
// sessions, and look after the account (its address, its password, its
// deletion); the links in account mail (/account/verify, /account/reset)
// open their own views of it. It uses sessiond's cookie mode
// (httpapi/cookie.go): the refresh token lives in an HttpOnly cookie this
// script cannot read, and the access token only in the variable below, so
// an injected script finds nothing to steal that outlives the page. Served
// from the same origin as the API. Organised by view: each has its open…
// (when it has a path of its own) and init… functions.
'use strict';

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

// ---- The API --------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super((problem && problem.detail) || 'HTTP ' + status);
    this.status = status;
    this.code = (problem && problem.code) || '';
    this.retryAfter = retryAfter;
    this.problem = problem || {}; // extension members: mfa_token, methods
  }
}

// The access token: memory only, never storage.
let accessToken = null;
let refreshTimer = null;

// call sends one request. cookie: the request sets or uses the refresh
// cookie, so it opts into cookie mode and carries the CSRF header.
async function call(method, path, { body, cookie = false, bearer = false } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (cookie) { headers['X-Sessiond-Cookie'] = '1'; headers['X-Sessiond-CSRF'] = '1'; }
  if (bearer && accessToken) headers['Authorization'] = 'Bearer ' + accessToken;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { code: 'network', detail: String(e) });
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (e) { data = null; }
  }
  if (!res.ok) {
    throw new ApiError(res.status, data, Number(res.headers.get('Retry-After')) || 0);
  }
  return data;
}

// tokens installs a token response and schedules the next refresh a little
// before the access token expires.
function tokens(t) {
  accessToken = t.access_token;
  clearTimeout(refreshTimer);
  const ms = Math.max(5, t.expires_in * 0.8) * 1000;
  refreshTimer = setTimeout(() => { refresh().catch(signedOut); }, ms);
}

async function refresh() {
  tokens(await call('POST', '/v1/refresh', { cookie: true }));
}

// authed runs a Bearer call; when the access token has expired (the laptop
// slept) it refreshes once and retries. Only invalid_token retries: a 401
// for a wrong password (changing it, deleting the account) is the answer,
// and sending the password again would count as a second failed attempt.
async function authed(method, path, body) {
  try {
    return await call(method, path, { body, bearer: true });
  } catch (e) {
    if (e.status !== 401 || e.code !== 'invalid_token') throw e;
    await refresh();
    return call(method, path, { body, bearer: true });
  }
}

// ---- Errors in words ------------------------------------------------------

// The codes that mean this browser's session is over.
const ENDED = ['invalid_refresh_token', 'refresh_token_reused', 'session_expired', 'invalid_token'];

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

function sayError(e, own = {}) {
  let said = own[e.code] || SAY[e.code];
  if (!said && ENDED.includes(e.code)) said = 'Your session has ended. Sign in again.';
  if (typeof said === 'function') said = said(e);
  return said || e.message || 'Something went wrong. Try again.';
}

// ---- Page helpers ---------------------------------------------------------

const $ = (id) => document.getElementById(id);

// show makes one view (an element with data-view) the visible one.
function show(view, focus) {
  for (const v of document.querySelectorAll('[data-view]')) v.hidden = v.id !== view;
  if (view !== 'view-account') $('passkeys-section').hidden = true;
  $('who').hidden = view !== 'view-account';
  if (focus) $(focus).focus();
}

function setError(id, e, own) {
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

function announce(text) {
  $('status').textContent = text;
}

// busy disables el's controls while f's request is in flight, then moves
// the focus to the element f returns (a disabled control cannot take it).
async function busy(el, f) {
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
function signedOut(e, text) {
  accessToken = null;
  clearTimeout(refreshTimer);
  clearAccount();
  let say = typeof text === 'string' ? text : '';
  if (!say && e && ENDED.includes(e.code)) say = 'You were signed out. Sign in again to continue.';
  else if (!say && e && e.status) say = sayError(e);
  notice('signin-notice', say);
  // The notice, when there is one, is the first thing to read.
  show('view-signin', say ? 'signin-notice' : 'signin-title');
}

// resume shows the account of the session the cookie holds, if any.
function resume() {
  return refresh().then(() => showAccount(false)).catch((e) => {
    // No cookie at all is a 400: a first visit, not a sign-out.
    signedOut(e.status === 400 ? null : e);
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
  let t;
  try {
    t = await call('POST', '/v1/login', { body: { email, password }, cookie: true });
  } catch (e) {
    if (e.code === 'mfa_required') return mfaLoginStep(e.problem, email); // mfa.js
    throw e;
  }
  tokens(t);
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
      created = await call('POST', '/v1/signup', { body: { email, password } });
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
      await call('POST', '/v1/password/forgot', { body: { email } });
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
      await call('POST', '/v1/email/verify', { body: { token: verifyToken } });
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
      await call('POST', '/v1/password/reset', { body: { token: resetToken, new_password: password } });
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

async function showAccount(focus) {
  const [who, list] = await Promise.all([authed('GET', '/v1/me'), authed('GET', '/v1/sessions')]);
  me = who;
  $('who-email').textContent = me.email;
  renderEmail(me);
  renderSessions(list.sessions);
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

function handleAccountError(e) {
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

function timeEl(iso) {
  const t = document.createElement('time');
  t.dateTime = iso;
  t.title = new Date(iso).toLocaleString();
  t.textContent = relativeTime(iso);
  return t;
}

async function revoke(s, device, btn) {
  btn.disabled = true;
  try {
    await authed('DELETE', '/v1/sessions/' + encodeURIComponent(s.session_id));
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
  try { await call('POST', '/v1/logout', { cookie: true }); } catch (e) { /* the cookie is cleared either way */ }
  signedOut(null);
  announce('You are signed out.');
}

async function signOutEverywhere() {
  try {
    await authed('POST', '/v1/logout-all');
  } catch (e) {
    return handleAccountError(e);
  }
  try { await call('POST', '/v1/logout', { cookie: true }); } catch (e) { /* only clears the cookie */ }
  signedOut(null);
  announce('You are signed out everywhere.');
}

async function resendVerification() {
  const btn = $('email-resend');
  setError('email-resend-error', null);
  notice('email-notice', '');
  await busy(btn.parentElement, async () => {
    try {
      await authed('POST', '/v1/email/verify/resend');
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
      await authed('DELETE', '/v1/me', { password: $('delete-password').value });
    } catch (e) {
      if (ENDED.includes(e.code)) return signedOut(e);
      cancelDelete();
      setError('delete-error', e, { invalid_credentials: "That isn't your password. Your account is still here." });
      return $('delete-password');
    }
    // The session went with the account; this only clears the cookie.
    try { await call('POST', '/v1/logout', { cookie: true }); } catch (e) { /* gone already */ }
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
      await authed('POST', '/v1/email', { password: $('email-password').value, new_email: email });
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
      await authed('POST', '/v1/password', { current_password: $('password-current').value, new_password: $('password-new').value });
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
    if (document.visibilityState === 'visible' && accessToken) {
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
  initSignIn();
  initForgot();
  initVerify();
  initReset();
  initAccount();
  const open = LINKS[location.pathname];
  if (open) open();
  else resume();
}

// For tests of the parsers in a real browser.
window.sessiondAccount = { parseUA, relativeTime, duration, sayError };

init();
