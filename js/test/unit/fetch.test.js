// client.fetch's rules (which requests get the AT, when a 401 is refreshed
// and retried, and when not), the DPoP proofs it signs, and the sign-in
// steps. The proofs are checked with node:crypto's WebCrypto, as a server
// would: the signature against the header's jwk.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Browser, flush } from './fakes.js'

const signIn = (tab) => tab.signIn({ email: 'ada@example.com', password: 'pw' })
const b64 = (b) => Buffer.from(b).toString('base64url')
const part = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url'))

// verifyProof checks a DPoP proof's signature with its own jwk, and returns
// its header and claims.
async function verifyProof(jwt) {
  const [h, c, s] = jwt.split('.')
  const header = part(jwt, 0)
  const key = await crypto.subtle.importKey('jwk', header.jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify'])
  const ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(s, 'base64url'), new TextEncoder().encode(h + '.' + c))
  assert.ok(ok, 'the proof does not verify with its jwk')
  return { header, claims: part(jwt, 1), sig: Buffer.from(s, 'base64url') }
}

test('fetch gives the AT to sessiond and tokenOrigins only, and passes other requests through untouched', async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  for (const [url, want] of [
    ['https://api.test/notes?x=1', 'Bearer at-1'],
    ['https://auth.test/v1/me', 'Bearer at-1'],
    ['https://elsewhere.test/x', null],
    ['https://api.test.evil/x', null],
    ['http://api.test/notes', null], // another scheme is another origin
  ]) {
    await tab.fetch(url, { headers: { 'X-Mine': 'kept' } })
    const req = b.server.requests.at(-1)
    assert.equal(req.headers.get('Authorization'), want, url)
    assert.equal(req.headers.get('X-Mine'), 'kept', url)
  }
  b.close()
})

test('fetch takes a Request as input, and a Request with a body is replayed from a copy', async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  let first = true
  b.server.override = (req) => {
    if (first && new URL(req.url).pathname === '/notes') {
      first = false
      return new Response('', { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } })
    }
  }
  const res = await tab.fetch(new Request('https://api.test/notes', { method: 'POST', body: 'from a Request', headers: { 'X-Mine': '1' } }))
  assert.equal(res.status, 200)
  const notes = b.server.requests.filter((r) => new URL(r.url).pathname === '/notes')
  assert.deepEqual(await Promise.all(notes.map((r) => r.text())), ['from a Request', 'from a Request'])
  assert.deepEqual(notes.map((r) => r.headers.get('X-Mine')), ['1', '1'])
  b.close()
})

test('a 401 about the token refreshes once and retries once; others are the answer', async () => {
  const cases = [
    { name: 'invalid_token, GET', init: {}, expired: true, refreshes: 1, sent: 2, status: 200 },
    { name: 'invalid_token, string body', init: { method: 'POST', body: '{"text":"hi"}' }, expired: true, refreshes: 1, sent: 2, status: 200 },
    { name: 'invalid_token, stream body: not replayable', init: { method: 'POST', body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('x')); c.close() } }), duplex: 'half' }, expired: true, refreshes: 0, sent: 1, status: 401 },
    { name: 'the token is fine', init: {}, expired: false, refreshes: 0, sent: 1, status: 200 },
  ]
  for (const tc of cases) {
    const b = new Browser()
    const tab = b.tab()
    await signIn(tab)
    if (tc.expired) b.server.current = 'revoked-by-server-restart' // the server no longer takes at-1
    const before = b.server.requests.length
    const res = await tab.fetch('https://api.test/notes', tc.init)
    if (tc.expired && tc.refreshes) b.server.current = 'at-2'
    assert.equal(b.server.refreshes, tc.refreshes, tc.name)
    assert.equal(b.server.requests.length - before - tc.refreshes, tc.sent, tc.name)
    b.close()
  }
})

test('the retried request carries the new AT and the same body', async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  let first = true
  b.server.override = (req) => {
    if (first && new URL(req.url).pathname === '/notes') {
      first = false
      return new Response('{"code":"invalid_token"}', { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } })
    }
  }
  const res = await tab.fetch('https://api.test/notes', { method: 'POST', body: 'the body' })
  assert.equal(res.status, 200)
  const notes = b.server.requests.filter((r) => new URL(r.url).pathname === '/notes')
  assert.equal(notes.length, 2)
  assert.equal(notes[0].headers.get('Authorization'), 'Bearer at-1')
  assert.equal(notes[1].headers.get('Authorization'), 'Bearer at-2')
  assert.equal(await notes[1].text(), 'the body')
  b.close()
})

test('a second 401 after the refresh is returned, not retried again', async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  b.server.current = 'nothing you have'
  const orig = b.server.tokens.bind(b.server)
  b.server.tokens = (d) => { const r = orig(d); b.server.current = 'still nothing'; return r }
  const res = await tab.fetch('https://api.test/notes')
  assert.equal(res.status, 401)
  assert.equal(b.server.refreshes, 1)
  assert.equal(tab.state, 'signedIn')
  b.close()
})

test("a 401 for a wrong password is the answer: no refresh, no second try", async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  await assert.rejects(tab.changePassword({ currentPassword: 'wrong', newPassword: 'x' }), (e) => e.code === 'invalid_credentials' && e.status === 401)
  assert.equal(b.server.refreshes, 0)
  assert.equal(b.server.requests.filter((r) => new URL(r.url).pathname === '/v1/password').length, 1)
  b.close()
})

test('sessiond calls carry cookie mode headers where the cookie is used, and API errors are SessiondErrors', async () => {
  const b = new Browser()
  const tab = b.tab()
  await assert.rejects(tab.signIn({ email: 'ada@example.com', password: 'nope' }), (e) => e.name === 'SessiondError' && e.code === 'invalid_credentials' && e.status === 401)
  await signIn(tab)
  const login = b.server.requests.find((r) => r.url.endsWith('/v1/login'))
  assert.equal(login.headers.get('X-Sessiond-Cookie'), '1')
  assert.equal(login.headers.get('X-Sessiond-CSRF'), '1')
  assert.equal(login.credentials, 'include')
  await tab.me()
  const me = b.server.requests.at(-1)
  assert.equal(me.headers.get('X-Sessiond-Cookie'), null)
  const down = b.tab({ env: { fetch: async () => { throw new TypeError('Failed to fetch') } } })
  await assert.rejects(down.forgotPassword({ email: 'a@b.c' }), (e) => e.code === 'network' && e.status === 0)
  b.close()
})

test('mfa_required: signIn resolves to the second step, completeMfa finishes it', async () => {
  const b = new Browser()
  const tab = b.tab()
  b.server.mfa = true
  const step = await signIn(tab)
  assert.deepEqual(step, { mfaRequired: true, mfaToken: 'mfa-1', methods: ['totp', 'recovery_code'] })
  assert.equal(tab.state, 'unknown')
  for (const [factor, want] of [[{ code: '123456' }, { mfa_token: 'mfa-1', code: '123456' }], [{ recoveryCode: 'k7q2', mfaToken: 'mfa-1' }, { mfa_token: 'mfa-1', recovery_code: 'k7q2' }]]) {
    if (factor.code) await tab.completeMfa(factor)
    else await tab.completeMfa(factor)
    const req = b.server.requests.at(-1)
    assert.equal(new URL(req.url).pathname, '/v1/login/mfa')
    assert.deepEqual(await req.json(), want)
    assert.equal(req.headers.get('X-Sessiond-CSRF'), '1')
  }
  assert.equal(tab.state, 'signedIn')
  b.close()
})

test('DPoP: login, refresh and logout carry a proof by one non-extractable P-256 key; its shape is RFC 9449', async () => {
  const b = new Browser({ dpop: true })
  const tab = b.tab()
  const r = await signIn(tab)
  assert.equal(r.tokenType, 'DPoP')
  assert.equal(tab.tokenType, 'DPoP')
  const pair = b.keyStore.pair
  assert.equal(pair.privateKey.extractable, false)
  assert.equal(pair.privateKey.algorithm.namedCurve, 'P-256')
  await assert.rejects(crypto.subtle.exportKey('jwk', pair.privateKey))
  const pub = await crypto.subtle.exportKey('jwk', pair.publicKey)

  // Past the refresh's time and into the AT's last second, where
  // getToken waits for the refresh the timer began.
  await b.clock.advance(99_500)
  assert.equal(await tab.getToken(), 'at-2')
  assert.equal(b.server.refreshes, 1)
  await tab.signOut()
  const jtis = new Set()
  for (const path of ['/v1/login', '/v1/refresh', '/v1/logout']) {
    const req = b.server.requests.find((q) => new URL(q.url).pathname === path)
    const { header, claims, sig } = await verifyProof(req.headers.get('DPoP'))
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'jwk', 'typ'])
    assert.equal(header.typ, 'dpop+jwt')
    assert.equal(header.alg, 'ES256')
    assert.deepEqual(header.jwk, { crv: 'P-256', kty: 'EC', x: pub.x, y: pub.y }, path + ': not the stored key, or more than the public members')
    assert.equal(sig.length, 64, 'ES256 signatures are raw r||s, 64 bytes')
    assert.equal(claims.htm, 'POST')
    assert.equal(claims.htu, 'https://auth.test' + path)
    assert.equal(claims.ath, undefined, path + ': ath without an AT')
    assert.ok(Number.isInteger(claims.iat) && Math.abs(claims.iat - b.clock.now() / 1000) < 120, path + ': iat')
    assert.ok(claims.jti.length >= 16 && !jtis.has(claims.jti), path + ': jti not random')
    jtis.add(claims.jti)
    assert.equal(req.headers.get('Authorization'), null)
  }
  b.close()
})

test('DPoP: a bound AT goes to sessiond as DPoP with ath; to another API as Bearer unless dpop is asked for', async () => {
  const b = new Browser({ dpop: true })
  const tab = b.tab()
  await signIn(tab)
  const ath = createHash('sha256').update('at-1').digest('base64url')
  for (const [url, init, scheme, proof] of [
    ['https://auth.test/v1/me', {}, 'DPoP', true],
    ['https://api.test/notes?page=2#top', {}, 'Bearer', false],
    ['https://api.test/notes?page=2#top', { dpop: true, method: 'PUT' }, 'DPoP', true],
  ]) {
    await tab.fetch(url, init)
    const req = b.server.requests.at(-1)
    assert.equal(req.headers.get('Authorization'), scheme + ' at-1', url)
    const p = req.headers.get('DPoP')
    assert.equal(!!p, proof, url)
    if (!p) continue
    const { claims } = await verifyProof(p)
    assert.equal(claims.ath, ath)
    assert.equal(claims.htm, init.method || 'GET')
    assert.equal(claims.htu, url.split('?')[0], 'htu keeps no query or fragment')
  }
  const optIn = b.tab({ dpop: true })
  await flush()
  await optIn.fetch('https://api.test/notes')
  assert.match(b.server.requests.at(-1).headers.get('Authorization'), /^DPoP /)
  b.close()
})

test('DPoP: use_dpop_nonce is retried once with the nonce, and the latest nonce is remembered', async () => {
  const b = new Browser({ dpop: true })
  const tab = b.tab()
  b.server.nonce = 'n-1'
  await signIn(tab)
  const logins = b.server.requests.filter((q) => q.url.endsWith('/v1/login'))
  assert.equal(logins.length, 2)
  assert.equal(part(logins[0].headers.get('DPoP'), 1).nonce, undefined)
  assert.equal(part(logins[1].headers.get('DPoP'), 1).nonce, 'n-1')
  assert.equal(await logins[1].json().then((j) => j.password), 'pw', 'the retry lost the body')
  // The next proof carries the nonce at once.
  await tab.me()
  assert.equal(part(b.server.requests.at(-1).headers.get('DPoP'), 1).nonce, 'n-1')
  // A server that wants a new nonce every time gets one retry, not a loop.
  let k = 1
  const before = b.server.requests.length
  b.server.override = () => { b.server.nonce = 'n-' + ++k }
  const res = await tab.fetch('https://auth.test/v1/me')
  assert.equal(res.status, 401)
  assert.equal(b.server.requests.length - before, 2)
  b.close()
})

test('without WebCrypto the session is unbound: no proofs, Bearer', async () => {
  const b = new Browser({ crypto: false, dpop: true })
  const tab = b.tab()
  const r = await signIn(tab)
  assert.equal(r.tokenType, 'Bearer')
  await tab.me()
  for (const q of b.server.requests) assert.equal(q.headers.get('DPoP'), null)
  assert.equal(b.server.requests.at(-1).headers.get('Authorization'), 'Bearer at-1')
  b.close()
})

test('onChange returns an unsubscribe function', async () => {
  const b = new Browser()
  const tab = b.tab()
  const seen = []
  const off = tab.onChange((e) => seen.push(e.state))
  await signIn(tab)
  off()
  await tab.signOut()
  assert.deepEqual(seen, ['signedIn'])
  b.close()
})
