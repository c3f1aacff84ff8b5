// Device-bound sessions in headless Chromium against a real sessiond: the
// SDK's key is non-extractable and kept in IndexedDB, the session it signs
// in is DPoP-bound, and its refresh cookie copied into another browser
// profile, without the key or with a key of its own, is refused there
// (401 invalid_dpop_proof) while the original profile keeps refreshing.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { skipReason, Sessiond, launch, newContext, openTab, waitFor, PASSWORD } from './harness.js'

const skip = (await skipReason()) || false
if (skip) console.log('# skipping the browser tests: ' + skip)

let server, browser

before(async () => {
  if (skip) return
  server = new Sessiond()
  await server.start()
  browser = await launch()
})

after(async () => {
  if (browser) await browser.close()
  if (server) await server.stop()
})

const token = (p) => p.evaluate(() => window.sdk.getToken())
const signIn = (p, email) => p.evaluate(([email, password]) => window.sdk.signIn({ email, password }), [email, PASSWORD])

// storedKey describes the key pair the SDK keeps in IndexedDB.
const storedKey = (p) => p.evaluate(() => new Promise((ok, no) => {
  const o = indexedDB.open('sessiond-browser')
  o.onerror = () => no(o.error)
  o.onsuccess = () => {
    const r = o.result.transaction('keys').objectStore('keys').get(location.origin)
    r.onsuccess = async () => {
      const pair = r.result
      if (!pair) return ok(null)
      let exported = true
      try { await crypto.subtle.exportKey('pkcs8', pair.privateKey) } catch (e) { exported = false }
      ok({ extractable: pair.privateKey.extractable, exported, curve: pair.privateKey.algorithm.namedCurve, jwk: await crypto.subtle.exportKey('jwk', pair.publicKey) })
    }
  }
}))

test('the session is bound: a copied refresh cookie is refused elsewhere, the original keeps refreshing', { skip }, async () => {
  const email = 'bound@example.com'
  await server.signUp(email)
  const home = await newContext(browser, server)
  const tab = await openTab(home, server)
  const r = await signIn(tab, email)
  assert.equal(r.tokenType, 'DPoP', 'the token response is not DPoP: ' + JSON.stringify(r))
  const key = await storedKey(tab)
  assert.deepEqual({ ...key, jwk: undefined }, { extractable: false, exported: false, curve: 'P-256', jwk: undefined })
  // The AT is bound to that key: cnf.jkt is its RFC 7638 thumbprint.
  const at = await token(tab)
  const claims = JSON.parse(Buffer.from(at.split('.')[1], 'base64url'))
  const { createHash } = await import('node:crypto')
  const jkt = createHash('sha256').update(JSON.stringify({ crv: key.jwk.crv, kty: key.jwk.kty, x: key.jwk.x, y: key.jwk.y })).digest('base64url')
  assert.equal(claims.cnf && claims.cnf.jkt, jkt)
  assert.equal(await tab.evaluate(async () => (await window.sdk.fetch(location.origin + '/v1/me')).status), 200)

  const [cookie] = (await home.cookies(server.url)).filter((c) => c.name === 'sessiond_rt')
  assert.ok(cookie, 'no refresh cookie')
  const before = await server.refreshes()

  // A fresh profile holding only the cookie, and one with a key of its own.
  for (const ownKey of [false, true]) {
    const thief = await newContext(browser, server)
    if (ownKey) {
      // Its key comes from a session of its own, which the copied cookie
      // then replaces.
      const other = 'thief@example.com'
      await server.signUp(other)
      const t0 = await openTab(thief, server)
      await signIn(t0, other)
      assert.ok(await storedKey(t0), 'the thief has no key of its own')
      await t0.close()
      await thief.clearCookies()
    }
    await thief.addCookies([cookie])
    const t = await openTab(thief, server)
    const state = await t.evaluate(() => window.sdk.restore().catch((e) => 'rejected: ' + e.code))
    assert.equal(state, 'signedOut', ownKey ? 'with its own key' : 'without a key')
    assert.deepEqual(await t.evaluate(() => window.events.at(-1)), { state: 'signedOut', reason: 'invalid_dpop_proof' })
    await thief.close()
  }
  const after = await server.refreshes()
  assert.equal((after.invalid_dpop_proof || 0) - (before.invalid_dpop_proof || 0), 2, JSON.stringify(after))

  // The session survived both attempts: its own profile refreshes on.
  const next = await waitFor('the next refresh at home', async () => {
    const a = await token(tab)
    return a !== at && a
  }, 15000)
  assert.notEqual(next, at)
  assert.equal(await tab.evaluate(() => window.sdk.state), 'signedIn')
  assert.equal(await tab.evaluate(async () => (await window.sdk.fetch(location.origin + '/v1/me')).status), 200)
  await home.close()
})

test('the account page binds its session: its calls carry Authorization: DPoP and a proof', { skip }, async () => {
  const email = 'page@example.com'
  await server.signUp(email)
  const ctx = await browser.newContext()
  const p = await ctx.newPage()
  const seen = []
  p.on('request', (r) => {
    if (r.url().startsWith(server.url + '/v1/')) seen.push({ path: new URL(r.url()).pathname, auth: r.headers().authorization || '', dpop: !!r.headers().dpop })
  })
  await p.goto(server.url + '/account/')
  await p.waitForSelector('#view-signin:not([hidden])')
  await p.fill('#signin-email', email)
  await p.fill('#signin-password', PASSWORD)
  await p.click('#signin-submit')
  await p.waitForSelector('#view-account:not([hidden]) #sessions li')
  const login = seen.find((s) => s.path === '/v1/login')
  assert.ok(login && login.dpop, 'the login carried no proof: ' + JSON.stringify(seen))
  const sessions = seen.find((s) => s.path === '/v1/sessions')
  assert.match(sessions.auth, /^DPoP /)
  assert.ok(sessions.dpop)
  await ctx.close()
})

test('with DPoP required and server nonces on, the SDK signs in, calls and refreshes, retrying once for a nonce', { skip }, async () => {
  const strict = new Sessiond({ SESSIOND_DPOP: 'required', SESSIOND_DPOP_NONCE: 'true' })
  await strict.start()
  try {
    const email = 'nonce@example.com'
    await strict.signUp(email)
    const ctx = await newContext(browser, strict)
    const tab = await openTab(ctx, strict)
    const nonces = []
    tab.on('response', (r) => { if (r.status() === 401 && r.headers()['dpop-nonce']) nonces.push(new URL(r.url()).pathname) })
    const r = await signIn(tab, email)
    assert.equal(r.tokenType, 'DPoP')
    // The login's first proof had no nonce: refused once, then accepted.
    assert.deepEqual(nonces, ['/v1/login'])
    const at = await token(tab)
    assert.equal(await tab.evaluate(async () => (await window.sdk.fetch(location.origin + '/v1/me')).status), 200)
    await waitFor('a refresh', async () => (await token(tab)) !== at, 15000)
    assert.equal(await tab.evaluate(() => window.sdk.state), 'signedIn')
    // The nonce was remembered from the answers: no refresh needed a retry.
    assert.deepEqual(nonces, ['/v1/login'])
    const counted = await strict.refreshes()
    assert.ok(counted.ok >= 1 && !counted.use_dpop_nonce, JSON.stringify(counted))
    await ctx.close()
  } finally {
    await strict.stop()
  }
})
