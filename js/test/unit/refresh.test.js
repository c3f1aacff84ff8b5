// The refresh state machine: when a tab refreshes, that the tabs of one
// browser refresh once between them, how a new tab finds its token, which
// answers sign every tab out and which are retried with backoff.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Browser, flush } from './fakes.js'

const signIn = (tab) => tab.signIn({ email: 'ada@example.com', password: 'pw' })

test('a refresh is due a quarter of the lifetime (at most a minute) before the AT expires', async () => {
  for (const { ttl, due } of [{ ttl: 100, due: 75_000 }, { ttl: 900, due: 840_000 }, { ttl: 8, due: 6_000 }]) {
    const b = new Browser()
    b.server.ttl = ttl
    const tab = b.tab()
    await signIn(tab)
    await b.clock.advance(due - 1)
    assert.equal(b.server.refreshes, 0, `ttl ${ttl}: refreshed before ${due} ms`)
    await b.clock.advance(1)
    assert.equal(b.server.refreshes, 1, `ttl ${ttl}: no refresh at ${due} ms`)
    assert.equal(await tab.getToken(), 'at-2')
    b.close()
  }
})

test('five tabs whose AT expires together refresh once, and all get the new AT', async () => {
  const b = new Browser()
  const tabs = [b.tab(), b.tab(), b.tab(), b.tab(), b.tab()]
  await signIn(tabs[0])
  await flush()
  for (const t of tabs) assert.equal(t.state, 'signedIn')
  assert.deepEqual(tabs[1].events, [{ state: 'signedIn', reason: 'peer' }])
  for (let round = 1; round <= 3; round++) {
    await b.clock.advance(75_000)
    assert.equal(b.server.refreshes, round, `round ${round}`)
    for (const t of tabs) assert.equal(await t.getToken(), 'at-' + (round + 1))
  }
  // Refreshing keeps the state: no event beyond the sign-in.
  for (const t of tabs) assert.equal(t.events.length, 1)
  b.close()
})

test('a tab that gets the lock after another refreshed asks it, even when the broadcast was lost', async () => {
  const b = new Browser()
  const [a, c] = [b.tab(), b.tab()]
  await signIn(a)
  await flush()
  // Lose every unsolicited token broadcast: only answers to asks arrive.
  b.hub.drop = (m) => m.t === 'token' && !m.to
  await b.clock.advance(100_000)
  assert.equal(b.server.refreshes, 1)
  assert.equal(await a.getToken(), await c.getToken())
  b.close()
})

test('a new tab takes its token from a live tab without refreshing', async () => {
  const b = new Browser()
  const a = b.tab()
  await signIn(a)
  const late = b.tab()
  assert.equal(await late.restore(), 'signedIn')
  assert.equal(await late.getToken(), 'at-1')
  assert.deepEqual(late.events, [{ state: 'signedIn', reason: 'peer' }])
  assert.equal(b.server.refreshes, 0)
  b.close()
})

test('a new tab alone refreshes once nobody answered', async () => {
  const b = new Browser()
  const tab = b.tab()
  const p = tab.restore()
  await flush()
  assert.equal(b.server.refreshes, 0, 'refreshed before the other tabs had time to answer')
  await b.clock.advance(200)
  assert.equal(await p, 'signedIn')
  assert.equal(b.server.refreshes, 1)
  assert.deepEqual(tab.events, [{ state: 'signedIn', reason: 'restore' }])
  b.close()
})

test('without a session cookie the state is signedOut, reason no_session, and other tabs hear nothing', async () => {
  const b = new Browser()
  b.server.refreshAnswer = () => new Response(JSON.stringify({ code: 'invalid_request', status: 400 }), { status: 400 })
  const tab = b.tab()
  const p = tab.restore()
  await b.clock.advance(200)
  assert.equal(await p, 'signedOut')
  assert.deepEqual(tab.events, [{ state: 'signedOut', reason: 'no_session' }])
  assert.ok(!b.hub.log.some((m) => m.t === 'out'), 'told other tabs of a session it never had')
  b.close()
})

test('signing out in one tab signs every tab out; their next fetch carries no token', async () => {
  const b = new Browser({ dpop: true })
  const tabs = [b.tab(), b.tab(), b.tab()]
  await signIn(tabs[0])
  await flush()
  await tabs[1].signOut()
  await flush()
  for (const t of tabs) {
    assert.equal(t.state, 'signedOut')
    assert.deepEqual(t.events.at(-1), { state: 'signedOut', reason: 'signOut' })
    const res = await t.fetch('https://api.test/notes')
    assert.equal(res.status, 401)
    assert.equal(b.server.requests.at(-1).headers.get('Authorization'), null)
  }
  assert.equal(b.keyStore.pair, null, 'the DPoP key outlived the sign-out')
  await b.clock.advance(1_000_000)
  assert.equal(b.server.refreshes, 0, 'a signed-out tab kept refreshing')
  b.close()
})

test('a refresh refused for good signs every tab out with its code as the reason', async () => {
  for (const [status, code] of [[401, 'invalid_refresh_token'], [401, 'session_expired'], [401, 'refresh_token_reused'], [403, 'account_disabled'], [401, 'invalid_dpop_proof']]) {
    const b = new Browser()
    const tabs = [b.tab(), b.tab()]
    await signIn(tabs[0])
    await flush()
    b.server.refreshAnswer = () => new Response(JSON.stringify({ status, code }), { status })
    await b.clock.advance(100_000)
    assert.equal(b.server.refreshes, 1, code)
    for (const t of tabs) assert.deepEqual(t.events.at(-1), { state: 'signedOut', reason: code }, code)
    b.close()
  }
})

test('a late sign-out of an older session does not end a newer one', async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  // Another tab says the session "sid-old" ended.
  const ch = new b.hub.BroadcastChannel('sessiond:https://auth.test')
  ch.postMessage({ t: 'out', reason: 'signOut', sid: 'sid-old', from: 'elsewhere' })
  await flush()
  assert.equal(tab.state, 'signedIn')
  b.close()
})

test('an outage is no sign-out: the refresh is retried with backoff, then recovers', async () => {
  const b = new Browser()
  const tabs = [b.tab(), b.tab()]
  await signIn(tabs[0])
  await flush()
  const times = []
  b.server.refreshAnswer = () => {
    times.push(b.clock.now())
    throw new TypeError('Failed to fetch')
  }
  const start = b.clock.now()
  await b.clock.advance(75_000 + 15_500)
  // With random() = 1 the waits are 1 s, 2 s, 4 s, 8 s.
  assert.deepEqual(times.map((t) => t - start), [75_000, 76_000, 78_000, 82_000, 90_000])
  for (const t of tabs) assert.equal(t.state, 'signedIn')
  b.server.refreshAnswer = null
  await b.clock.advance(16_000)
  assert.equal(b.server.refreshRequests().length, 6)
  for (const t of tabs) {
    assert.equal(await t.getToken(), 'at-2')
    assert.deepEqual(t.events.map((e) => e.state), ['signedIn'])
  }
  b.close()
})

test('the backoff has a ceiling', async () => {
  const b = new Browser()
  const tab = b.tab({ maxBackoff: 5_000 })
  await signIn(tab)
  const times = []
  b.server.refreshAnswer = () => { times.push(b.clock.now()); return new Response('', { status: 502 }) }
  await b.clock.advance(75_000 + 22_000)
  const gaps = times.slice(1).map((t, i) => t - times[i])
  assert.deepEqual(gaps, [1_000, 2_000, 4_000, 5_000, 5_000, 5_000])
  b.close()
})

test('a 503 with Retry-After is retried after exactly that, and keeps the state', async () => {
  const b = new Browser()
  const tab = b.tab()
  await signIn(tab)
  const times = []
  b.server.refreshAnswer = () => {
    times.push(b.clock.now())
    return times.length < 3
      ? new Response(JSON.stringify({ status: 503, code: 'unavailable' }), { status: 503, headers: { 'Retry-After': '7' } })
      : b.server.tokens(false)
  }
  await b.clock.advance(75_000 + 14_000)
  assert.deepEqual(times.slice(1).map((t, i) => t - times[i]), [7_000, 7_000])
  assert.equal(tab.state, 'signedIn')
  assert.deepEqual(tab.events.map((e) => e.state), ['signedIn'])
  b.close()
})

test('during an outage the other tabs wait for the refreshing one instead of trying too', async () => {
  const b = new Browser()
  const tabs = [b.tab(), b.tab(), b.tab(), b.tab(), b.tab()]
  await signIn(tabs[0])
  await flush()
  b.server.refreshAnswer = () => { throw new TypeError('Failed to fetch') }
  await b.clock.advance(75_000 + 15_500)
  // One tab's schedule: 75 s, +1, +2, +4, +8: five attempts, not five per tab.
  assert.equal(b.server.refreshes, 5)
  b.close()
})

test('restore during an outage rejects with the network error, keeps retrying, and signs in on recovery', async () => {
  const b = new Browser()
  b.server.refreshAnswer = () => { throw new TypeError('Failed to fetch') }
  const tab = b.tab()
  const p = tab.restore().catch((e) => e)
  await b.clock.advance(200)
  const err = await p
  assert.equal(err.code, 'network')
  assert.equal(err.status, 0)
  assert.equal(tab.state, 'unknown')
  b.server.refreshAnswer = null
  await b.clock.advance(1_000)
  assert.equal(tab.state, 'signedIn')
  assert.deepEqual(tab.events, [{ state: 'signedIn', reason: 'restore' }])
  b.close()
})

test('without Web Locks a localStorage lease still lets five tabs refresh once', async () => {
  const b = new Browser({ locks: false })
  const tabs = [b.tab(), b.tab(), b.tab(), b.tab(), b.tab()]
  await signIn(tabs[0])
  await flush()
  for (let round = 1; round <= 2; round++) {
    await b.clock.advance(76_000) // the lease's own waits are on the clock too
    assert.equal(b.server.refreshes, round)
  }
  assert.equal(b.storage.getItem('sessiond-refresh:https://auth.test'), null, 'the lease was left behind')
  // The lease holds a tab id and an expiry, never a token.
  const leases = b.storage.log.filter(([k]) => k.startsWith('sessiond-refresh:'))
  assert.ok(leases.length >= 2)
  for (const [, v] of b.storage.log) assert.doesNotMatch(v, /at-\d/, 'a token went into localStorage')
  b.close()
})

test('without BroadcastChannel a tab still refreshes on its own', async () => {
  const b = new Browser({ channel: false })
  const tab = b.tab()
  assert.equal(await tab.restore(), 'signedIn')
  await b.clock.advance(100_000)
  assert.equal(b.server.refreshes, 2)
  b.close()
})
