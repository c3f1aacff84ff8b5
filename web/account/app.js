// The account page: sign up, sign in, see where you're signed in, and end
// sessions. It uses sessiond's cookie mode (httpapi/cookie.go): the refresh
// token lives in an HttpOnly cookie this script cannot read, and the access
// token only in the variable below, so an injected script finds nothing to
// steal that outlives the page. Served from the same origin as the API.
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

// authed runs a Bearer call; on a 401 it refreshes once and retries, so an
// access token that expired while the laptop slept costs nothing.
async function authed(method, path) {
  try {
    return await call(method, path, { bearer: true });
  } catch (e) {
    if (e.status !== 401) throw e;
    await refresh();
    return call(method, path, { bearer: true });
  }
}

// ---- Errors in words ------------------------------------------------------

const ENDED = ['invalid_refresh_token', 'refresh_token_reused', 'session_expired', 'invalid_token'];

function sayError(e) {
  switch (e.code) {
    case 'invalid_credentials':
      return "That email and password don't match. Check them and try again.";
    case 'too_many_attempts':
      return 'Too many attempts. Wait ' + (e.retryAfter ? duration(e.retryAfter) : 'a few minutes') + ' and try again.';
    case 'email_taken':
      return 'There is already an account with that email. Sign in instead.';
    case 'invalid_email':
      return "That doesn't look like an email address.";
    case 'weak_password':
      return 'Choose a stronger password: ' + e.message;
    case 'invalid_request':
      return 'Please fill in every field.';
    case 'unavailable':
      return "The service can't reach its database right now. Try again in a moment.";
    case 'network':
      return "Can't reach the server. Check your connection and try again.";
    case 'cross_site_request':
    case 'cookie_mode_disabled':
      return 'This page is not allowed to sign you in: ' + e.message;
    case 'not_found':
      return 'That session has already ended.';
  }
  if (ENDED.includes(e.code)) return 'Your session has ended. Sign in again.';
  return e.message || 'Something went wrong. Try again.';
}

// ---- Views ----------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const VIEWS = ['view-loading', 'view-signin', 'view-signup', 'view-account'];

function show(view, focus) {
  for (const v of VIEWS) $(v).hidden = v !== view;
  if (view !== 'view-account') $('passkeys-section').hidden = true;
  $('who').hidden = view !== 'view-account';
  if (focus) $(focus).focus();
}

function setError(id, e) {
  const el = $(id);
  el.textContent = e ? sayError(e) : '';
  el.hidden = !e;
}

function announce(text) {
  $('status').textContent = text;
}

// signedOut returns to the sign-in form, saying why when the session was
// ended elsewhere.
function signedOut(e) {
  accessToken = null;
  clearTimeout(refreshTimer);
  const notice = $('signin-notice');
  if (e && ENDED.includes(e.code)) {
    notice.textContent = 'You were signed out. Sign in again to continue.';
    notice.hidden = false;
  } else if (e && e.status) {
    notice.textContent = sayError(e);
    notice.hidden = false;
  } else {
    notice.hidden = true;
  }
  show('view-signin', 'signin-title');
}

async function showAccount(focus) {
  const [me, list] = await Promise.all([authed('GET', '/v1/me'), authed('GET', '/v1/sessions')]);
  $('who-email').textContent = me.email;
  renderSessions(list.sessions);
  setError('account-error', null);
  show('view-account', focus ? 'sessions-title' : null);
  // Other parts of the page (passkey.js) draw their sections on this.
  document.dispatchEvent(new CustomEvent('sessiond:account'));
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

// ---- Actions --------------------------------------------------------------

async function signIn(email, password) {
  tokens(await call('POST', '/v1/login', { body: { email, password }, cookie: true }));
  $('signin-notice').hidden = true;
  await showAccount(true);
  announce('Signed in as ' + email + '.');
}

async function revoke(s, device, btn) {
  btn.disabled = true;
  try {
    await authed('DELETE', '/v1/sessions/' + encodeURIComponent(s.session_id));
    announce('Signed out ' + device.name + '.');
  } catch (e) {
    if (e.code !== 'not_found') {
      btn.disabled = false;
      if (ENDED.includes(e.code)) return signedOut(e);
      return setError('account-error', e);
    }
  }
  try { await showAccount(false); } catch (e) { handleAccountError(e); }
  $('sessions-title').focus();
}

function handleAccountError(e) {
  if (ENDED.includes(e.code) || e.status === 401) return signedOut(e);
  setError('account-error', e);
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

// busy disables a form while its request is in flight.
async function busy(form, f) {
  const controls = form.querySelectorAll('input, button');
  controls.forEach((c) => { c.disabled = true; });
  try { await f(); } finally { controls.forEach((c) => { c.disabled = false; }); }
}

function init() {
  $('to-signup').addEventListener('click', () => show('view-signup', 'signup-title'));
  $('to-signin').addEventListener('click', () => show('view-signin', 'signin-title'));

  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const email = $('signin-email').value.trim();
    const password = $('signin-password').value;
    busy(form, async () => {
      try {
        setError('signin-error', null);
        await signIn(email, password);
        form.reset();
      } catch (e) {
        setError('signin-error', e);
        $('signin-password').focus();
      }
    });
  });

  $('signup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const email = $('signup-email').value.trim();
    const password = $('signup-password').value;
    busy(form, async () => {
      try {
        setError('signup-error', null);
        await call('POST', '/v1/signup', { body: { email, password } });
        await signIn(email, password);
        form.reset();
      } catch (e) {
        setError('signup-error', e);
        (e.code === 'weak_password' ? $('signup-password') : $('signup-email')).focus();
      }
    });
  });

  $('signout-here').addEventListener('click', signOutHere);
  $('signout-everywhere').addEventListener('click', signOutEverywhere);

  // Coming back to the tab shows the list as it is now.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && accessToken) {
      showAccount(false).catch(handleAccountError);
    }
  });

  // Resume the session the cookie holds, if any.
  refresh().then(() => showAccount(false)).catch((e) => {
    // No cookie at all is a 400: a first visit, not a sign-out.
    signedOut(e.status === 400 ? null : e);
  });
}

// For tests of the parsers in a real browser.
window.sessiondAccount = { parseUA, relativeTime, duration };

init();
