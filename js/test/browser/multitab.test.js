// The SDK in headless Chromium against a real sessiond (6-second access
// tokens): the tabs of one browser profile refresh once between them, hear
// of a sign-out and of a session ended elsewhere, ride out sessiond being
// down, and a new tab takes a live tab's token. Refreshes are counted at
// the server, from its /metrics (sessiond_refreshes_total).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { skipReason, Sessiond, launch, newContext, openTab, waitFor, sleep, PASSWORD } from './harness.js'

const skip = (await skipReason()) || false
if (skip) console.log('# skipping the browser tests: ' + skip)

let server, browser
let users = 0
const newUser = async () => {
  const email = 'tab' + ++users + '@example.com'
  await server.signUp(email)
  return email
}

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
const state = (p) => p.evaluate(() => window.sdk.state)
const events = (p) => p.evaluate(() => window.events)
const signIn = (p, email) => p.evaluate(([email, password]) => window.sdk.signIn({ email, password }), [email, PASSWORD])

// tabs opens n tabs of a new profile, signs the first in as a new user, and
// waits until every tab holds the same AT.
async function signedInTabs(n, options) {
  const email = await newUser()
  const ctx = await newContext(browser, server, options)
  const pages = [await openTab(ctx, server)]
  await signIn(pages[0], email)
  for (let i = 1; i < n; i++) {
    const p = await openTab(ctx, server)
    assert.equal(await p.evaluate(() => window.sdk.restore()), 'signedIn')
    pages.push(p)
  }
  const at = await token(pages[0])
  for (const p of pages) assert.equal(await token(p), at)
  return { ctx, pages, email, at }
}

test('five tabs whose AT expires at once cause exactly one /v1/refresh, round after round', { skip }, async () => {
  const before = (await server.refreshes()).total
  const { ctx, pages, at } = await signedInTabs(5)
  // Opening four more tabs took no refresh: they asked the first.
  assert.equal((await server.refreshes()).total, before)
  let last = at
  for (let round = 1; round <= 2; round++) {
    // Each AT lives 6 s and is refreshed 1.5 s before it expires.
    const next = await waitFor('round ' + round + "'s new AT in every tab", async () => {
      const ats = await Promise.all(pages.map(token))
      return ats.every((a) => a === ats[0] && a !== last) && ats[0]
    }, 15000)
    const counted = await server.refreshes()
    assert.equal(counted.total - before, round, 'round ' + round + ': ' + JSON.stringify(counted))
    last = next
  }
  for (const p of pages) assert.deepEqual((await events(p)).map((e) => e.state), ['signedIn'])
  await ctx.close()
})

test('a new tab gets its token from a live tab without a second refresh', { skip }, async () => {
  const email = await newUser()
  const ctx = await newContext(browser, server)
  const first = await openTab(ctx, server)
  await signIn(first, email)
  const before = (await server.refreshes()).total
  const late = await openTab(ctx, server)
  assert.equal(await late.evaluate(() => window.sdk.restore()), 'signedIn')
  assert.equal(await token(late), await token(first))
  assert.deepEqual(await events(late), [{ state: 'signedIn', reason: 'peer' }])
  assert.equal((await server.refreshes()).total, before)
  // And it works: sessiond takes the token.
  assert.equal(await late.evaluate(async () => (await window.sdk.me()).email), email)
  await ctx.close()
})

test('signing out in one tab reaches every tab: onChange fires, and the next fetch is unauthenticated', { skip }, async () => {
  const { ctx, pages } = await signedInTabs(3)
  await pages[1].evaluate(() => window.sdk.signOut())
  for (const p of pages) {
    await waitFor('the sign-out in every tab', async () => (await state(p)) === 'signedOut', 5000)
    assert.deepEqual((await events(p)).at(-1), { state: 'signedOut', reason: 'signOut' })
    const sent = p.waitForRequest((r) => r.url().endsWith('/v1/me'))
    const answer = await p.evaluate(async () => {
      const res = await window.sdk.fetch(location.origin + '/v1/me')
      return { status: res.status, code: (await res.json()).code }
    })
    assert.equal((await sent).headers().authorization, undefined)
    assert.deepEqual(answer, { status: 401, code: 'invalid_token' })
  }
  await ctx.close()
})

test('a session ended from another device signs every tab out at their next refresh', { skip }, async () => {
  const { ctx, pages, email } = await signedInTabs(3)
  const sid = await pages[0].evaluate(() => window.sdk.sessionId)
  // Another device: a login of its own, ending this browser's session.
  const other = await server.api('POST', '/v1/login', { email, password: PASSWORD })
  assert.equal(other.status, 200)
  const ended = await server.api('DELETE', '/v1/sessions/' + sid, null, other.body.access_token)
  assert.equal(ended.status, 204)
  for (const p of pages) {
    await waitFor('the revoked session noticed', async () => (await state(p)) === 'signedOut', 15000)
    assert.deepEqual((await events(p)).at(-1), { state: 'signedOut', reason: 'invalid_refresh_token' })
  }
  const counted = await server.refreshes()
  assert.ok(counted.invalid_refresh_token >= 1, JSON.stringify(counted))
  await ctx.close()
})

test('sessiond down for 10 s during a refresh: no tab signs out, and all recover after', { skip }, async () => {
  const { ctx, pages, at } = await signedInTabs(3)
  let failed = 0
  for (const p of pages) p.on('requestfailed', (r) => { if (r.url().endsWith('/v1/refresh')) failed++ })
  // The refresh is due 4.5 s after the login; sessiond goes down before.
  await server.kill()
  await sleep(10000)
  // Meanwhile the refresh was tried (and retried), and every tab kept its
  // state, though their AT has expired.
  assert.ok(failed >= 2, failed + ' refreshes tried while sessiond was down')
  for (const p of pages) assert.equal(await state(p), 'signedIn')
  await server.start()
  const next = await waitFor('a new AT in every tab', async () => {
    const ats = await Promise.all(pages.map((p) => p.evaluate(() => window.sdk.getToken())))
    return ats.every((a) => a === ats[0] && a !== at) && ats[0]
  }, 30000)
  assert.ok(next)
  for (const p of pages) {
    assert.deepEqual((await events(p)).map((e) => e.state), ['signedIn'])
    assert.equal(await p.evaluate(async () => (await window.sdk.fetch(location.origin + '/v1/me')).status), 200)
  }
  // The restarted process counts from zero: its refreshes all succeeded.
  const counted = await server.refreshes()
  assert.ok(counted.ok >= 1 && counted.total === counted.ok, JSON.stringify(counted))
  await ctx.close()
})
