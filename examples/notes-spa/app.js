// A single-page app on sessiond: sign in with the browser SDK, then call
// the notes service (examples/notes) through the SDK's fetch, which adds
// the access token, refreshes it before it expires (once for all of this
// app's tabs) and signs every tab out together. The page's origin serves
// /notes (serve.js passes it on to the notes service), so it is the origin
// the token may go to.
import { createClient } from '/sessiond-browser.js';

const $ = (id) => document.getElementById(id);
const sessiond = new URLSearchParams(location.search).get('sessiond') || 'http://127.0.0.1:8080';
// The session is bound to this browser's key (DPoP), so its token is good
// only with a proof by that key: dpop: true sends one to the notes service
// too, which checks it against its public URL (NOTES_PUBLIC_URL, this page's
// origin, where the browser reaches /notes).
const client = createClient({ baseUrl: sessiond, tokenOrigins: [location.origin], dpop: true });

function show(state) {
  $('signin').hidden = state !== 'signedOut';
  $('notes-view').hidden = state !== 'signedIn';
  $('status').textContent = state === 'signedIn' ? 'Your notes' : 'Sign in to see your notes';
  if (state === 'signedIn') load();
}

async function load() {
  const res = await client.fetch('/notes');
  if (!res.ok) return ($('error').textContent = 'GET /notes: ' + res.status);
  const { notes } = await res.json();
  $('notes').replaceChildren(...notes.map((n) => Object.assign(document.createElement('li'), { textContent: n.text })));
}

$('signin').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('error').textContent = '';
  try {
    const r = await client.signIn({ email: $('email').value, password: $('password').value });
    if (r.mfaRequired) $('error').textContent = 'This account asks for a second factor: sign in on the account page.';
  } catch (e) {
    $('error').textContent = e.message; // a SessiondError: e.code is the problem's code
  }
});

$('add').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const res = await client.fetch('/notes', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: $('text').value }),
  });
  if (res.ok) { $('text').value = ''; load(); }
});

$('signout').addEventListener('click', () => client.signOut());

// Every tab follows sign-ins and sign-outs, this one's and the others'.
client.onChange(({ state }) => show(state));
client.restore().then(show, (e) => { $('status').textContent = "Can't reach sessiond: " + e.message; });
