// @sessiond/browser: sessiond's browser SDK. One ES module, no dependencies.
//
// Cookie mode only: the refresh token (RT) lives in sessiond's HttpOnly
// cookie, out of reach of scripts; the access token (AT) lives in this
// module's memory, never in storage. Tabs of one origin share one session
// and one refresh: refreshes run under a Web Lock (a localStorage lease
// without Web Locks), the tab that refreshed hands the new AT to the others
// over a BroadcastChannel, and a new tab asks the live ones before it
// refreshes itself. Sessions are bound by default to a non-extractable
// ECDSA P-256 key kept in IndexedDB (DPoP, RFC 9449), so a copied cookie
// is of no use elsewhere. See README.md beside src/ for the whole story.

/** The refresh answers that mean the session is over. */
const ENDED = ['invalid_refresh_token', 'session_expired', 'refresh_token_reused', 'account_disabled', 'invalid_dpop_proof']

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' }

const enc = (s) => new TextEncoder().encode(s)

/** @param {ArrayBuffer|Uint8Array} b */
const b64 = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')

const b64j = (o) => b64(enc(JSON.stringify(o)))

/**
 * An error answer of sessiond (an RFC 9457 problem), or a request that did
 * not reach it (status 0, code "network").
 */
export class SessiondError extends Error {
  /**
   * @param {number} status
   * @param {any} problem
   * @param {number} [retryAfter] seconds, from Retry-After
   */
  constructor(status, problem, retryAfter) {
    super((problem && problem.detail) || 'HTTP ' + status)
    this.name = 'SessiondError'
    this.status = status
    this.code = (problem && problem.code) || ''
    this.retryAfter = retryAfter || 0
    /** The whole problem document, extension members included. */
    this.problem = problem || {}
  }
}

const retryAfter = (res) => Number(res.headers.get('Retry-After')) || 0

// The problem code of an answer: WWW-Authenticate's error, else the body's code.
async function codeOf(res) {
  const m = /error="?(\w+)/.exec(res.headers.get('WWW-Authenticate') || '')
  if (m) return m[1]
  try {
    return (await res.clone().json()).code || ''
  } catch (e) {
    return ''
  }
}

// A key store in IndexedDB: one CryptoKeyPair per sessiond, kept by
// structured clone, which keeps a non-extractable private key so.
function idbStore(idb, name) {
  if (!idb) return null
  const run = (mode, f) => new Promise((ok, no) => {
    const o = idb.open('sessiond-browser', 1)
    o.onupgradeneeded = () => o.result.createObjectStore('keys')
    o.onerror = () => no(o.error)
    o.onsuccess = () => {
      const db = o.result
      const tx = db.transaction('keys', mode)
      const r = f(tx.objectStore('keys'))
      tx.oncomplete = () => { db.close(); ok(r.result) }
      tx.onerror = tx.onabort = () => { db.close(); no(tx.error) }
    }
  })
  return {
    get: () => run('readonly', (s) => s.get(name)),
    set: (v) => run('readwrite', (s) => s.put(v, name)),
    delete: () => run('readwrite', (s) => s.delete(name)),
  }
}

/**
 * Creates a client of the sessiond at options.baseUrl.
 * @param {import('./sessiond-browser').ClientOptions} [options]
 * @returns {import('./sessiond-browser').Client}
 */
export function createClient(options = {}) {
  const g = globalThis
  const env = options.env || {}
  const has = (k) => k in env
  const nav = g.navigator || {}
  const fetchFn = env.fetch || ((a, b) => g.fetch(a, b))
  const locks = has('locks') ? env.locks : nav.locks
  const BC = has('BroadcastChannel') ? env.BroadcastChannel : g.BroadcastChannel
  let storage = env.localStorage
  if (!has('localStorage')) try { storage = g.localStorage } catch (e) { /* blocked */ }
  const crypto = has('crypto') ? env.crypto : g.crypto
  const subtle = crypto && crypto.subtle
  const now = env.now || Date.now
  const setT = env.setTimeout || ((f, ms) => setTimeout(f, ms))
  const clearT = env.clearTimeout || ((t) => clearTimeout(t))
  const random = env.random || Math.random
  const loc = g.location && g.location.href
  const base = new URL(options.baseUrl || loc, loc).href.replace(/\/+$/, '')
  const origins = (options.tokenOrigins || []).map((o) => new URL(o).origin)
  const askTimeout = options.askTimeout || 200
  const maxBackoff = options.maxBackoff || 30000
  const keyStore = has('keyStore') ? env.keyStore : idbStore(has('indexedDB') ? env.indexedDB : g.indexedDB, base)
  const bindable = options.bind !== false && subtle && keyStore
  const lockName = 'sessiond-refresh:' + base

  const rid = () => b64(crypto.getRandomValues(new Uint8Array(16)))
  const id = rid() // this tab
  const sleep = (ms) => new Promise((ok) => setT(ok, ms))

  /** @type {null|{at:string, exp:number, ttl:number, type:string, sid:string}} */
  let tok = null
  let state = 'unknown'
  let ended = '' // the session this tab saw end: its late tokens are not taken
  let timer = null
  let backoffUntil = 0
  let failures = 0
  let lastError = null
  let inflight = null
  let restoring = null
  let keyP = null
  let skew = 0 // server clock minus ours, when they differ by more than 10 s
  const nonces = {} // the latest DPoP-Nonce of each origin
  const listeners = new Set()
  const peers = new Set() // tabs heard on the channel
  const waiters = new Map()

  // ---- State ----------------------------------------------------------------

  const margin = () => Math.min(60000, tok.ttl / 4)
  const fresh = () => !!tok && now() < tok.exp - margin()

  function setState(s, reason) {
    if (s === state) return
    state = s
    for (const f of [...listeners]) {
      try { f({ state: s, reason }) } catch (e) { setT(() => { throw e }, 0) }
    }
  }

  function schedule() {
    clearT(timer)
    timer = null
    if (state === 'signedOut' || (!tok && !backoffUntil)) return
    const when = Math.max(tok ? tok.exp - margin() : 0, backoffUntil)
    timer = setT(() => { timer = null; refresh(tok ? tok.at : '') }, Math.max(0, when - now()))
  }

  // signedIn installs a token: t is a token response, or a peer's message.
  function signedIn(t, reason, peer) {
    const ttl = t.ttl || (t.expires_in || 0) * 1000
    tok = { at: t.at || t.access_token, exp: t.exp || now() + ttl, ttl, type: t.type || (t.token_type === 'DPoP' ? 'DPoP' : 'Bearer'), sid: t.sid || t.session_id || '' }
    ended = ''
    backoffUntil = failures = 0
    if (peer) keyP = null // the peer may have made the key
    else post({ t: 'token', ...tok })
    schedule()
    setState('signedIn', reason)
  }

  function signedOut(reason, tell) {
    if (tok) ended = tok.sid
    if (tell) post({ t: 'out', reason, sid: ended })
    tok = null
    keyP = null
    backoffUntil = failures = 0
    clearT(timer)
    setState('signedOut', reason)
  }

  // transient keeps the state through an outage and retries later: after
  // Retry-After when the server says, else with exponential backoff and jitter.
  function transient(err) {
    lastError = err
    failures++
    backoffUntil = now() + (err.retryAfter * 1000 || Math.min(maxBackoff, 1000 * 2 ** (failures - 1)) * (0.5 + random() / 2))
    post({ t: 'wait', until: backoffUntil })
    schedule()
    return false
  }

  // ---- Tabs -----------------------------------------------------------------

  let ch = null
  if (BC) {
    try {
      ch = new BC('sessiond:' + base)
      ch.onmessage = (e) => onMessage(e.data)
    } catch (e) { ch = null }
  }
  function post(m) {
    try { if (ch) ch.postMessage({ ...m, from: id }) } catch (e) { /* closed */ }
  }
  if (g.addEventListener) g.addEventListener('pagehide', () => post({ t: 'bye' }))

  function onMessage(m) {
    if (!m || m.from === id || (m.to && m.to !== id)) return
    peers.add(m.from)
    if (m.t === 'ask') {
      post(state === 'signedIn' && fresh() && tok.exp > m.min ? { t: 'token', to: m.from, q: m.q, ...tok } : { t: 'none', to: m.from, q: m.q })
    } else if (m.t === 'token') {
      if (m.sid !== ended && (!tok || m.exp > tok.exp)) signedIn(m, 'peer', true)
    } else if (m.t === 'out') {
      // Only the ending of this tab's own session: a late message about an
      // older one (or a tab that found no session) ends nothing here.
      if (!tok || m.sid === tok.sid) signedOut(m.reason)
    } else if (m.t === 'wait') {
      // The refreshing tab retries first; this one only if that tab is gone.
      if (tok) {
        backoffUntil = Math.max(backoffUntil, m.until + askTimeout + random() * 1000)
        schedule()
      }
    } else if (m.t === 'bye') peers.delete(m.from)
    const w = waiters.get(m.q)
    if (w) w()
  }

  // ask asks the other tabs for a token that expires after min, and waits
  // until one arrives, every known tab said it has none, or askTimeout.
  function ask(min) {
    return new Promise((ok) => {
      const q = rid()
      const expect = peers.size
      let n = 0
      const done = (v) => { waiters.delete(q); clearT(t); ok(v) }
      const t = setT(() => done(false), askTimeout)
      waiters.set(q, () => {
        if (tok && tok.exp > min && fresh()) done(true)
        else if (expect && ++n >= expect) done(false)
      })
      post({ t: 'ask', q, min })
    })
  }

  // withLock runs f while this tab alone of the origin's may refresh.
  async function withLock(f) {
    if (locks) return locks.request(lockName, f)
    if (!storage) return f()
    // Without Web Locks, a lease in localStorage: set it, wait for other
    // writers to land, and hold it only if it is still ours.
    const read = () => { try { return JSON.parse(storage.getItem(lockName)) || {} } catch (e) { return {} } }
    for (;;) {
      const l = read()
      if (!l.id || l.until < now()) {
        storage.setItem(lockName, JSON.stringify({ id, until: now() + 20000 }))
        await sleep(50)
        if (read().id === id) break
      } else await sleep(50 + random() * 100)
    }
    try { return await f() } finally { if (read().id === id) storage.removeItem(lockName) }
  }

  // refresh gets a new AT, unless another tab got one meanwhile; stale is
  // the AT that is due or was refused. It resolves to whether a fresh
  // token is at hand; it never rejects.
  function refresh(stale) {
    return inflight || (inflight = withLock(async () => {
      if (tok && tok.at !== stale && fresh()) return true
      if (now() < backoffUntil) return schedule(), false
      if (peers.size && await ask(tok ? tok.exp : 0)) return true
      return doRefresh()
    }).catch((e) => { lastError = e; return false }).finally(() => { inflight = null }))
  }

  async function doRefresh() {
    let res
    const init = { method: 'POST', credentials: 'include', cache: 'no-store' }
    if (g.AbortSignal && AbortSignal.timeout) init.signal = AbortSignal.timeout(options.refreshTimeout || 15000)
    try {
      res = await attempt(new Request(base + '/v1/refresh', init), { cookie: 1, proof: 1, replay: 1 })
    } catch (e) {
      return transient(new SessiondError(0, { code: 'network', detail: String(e) }))
    }
    clock(res)
    const data = await res.json().catch(() => null)
    if (res.ok && data && data.access_token) {
      signedIn(data, state === 'signedIn' ? 'refresh' : 'restore')
      return true
    }
    const err = new SessiondError(res.status, data, retryAfter(res))
    if (res.status >= 500 || res.status === 429 || res.status === 408 || !err.code) return transient(err)
    lastError = err
    // Without a session cookie the answer is a 400: no session, not an ending.
    const ends = ENDED.includes(err.code)
    signedOut(ends || err.code !== 'invalid_request' ? err.code : 'no_session', ends)
    return false
  }

  // ---- DPoP -----------------------------------------------------------------

  async function loadKey(create) {
    const get = async () => {
      let pair = await keyStore.get()
      if (!pair && create) {
        pair = await subtle.generateKey(ECDSA, false, ['sign'])
        await keyStore.set(pair)
      }
      return pair
    }
    const pair = await (locks ? locks.request('sessiond-key:' + base, get) : get())
    if (!pair) return null
    const j = await subtle.exportKey('jwk', pair.publicKey)
    return { pair, jwk: { crv: j.crv, kty: j.kty, x: j.x, y: j.y } }
  }

  // key is this browser's DPoP key for the sessiond, made when create says
  // so and there is none; null without WebCrypto or IndexedDB.
  async function key(create) {
    if (!bindable) return null
    let k = await (keyP || (keyP = loadKey(false).catch(() => null)))
    if (!k && create) k = await (keyP = loadKey(true).catch(() => null))
    if (!k) keyP = null
    return k
  }

  async function dropKey() {
    keyP = null
    if (bindable) try { await (locks ? locks.request('sessiond-key:' + base, () => keyStore.delete()) : keyStore.delete()) } catch (e) { /* gone */ }
  }

  // proof is a DPoP proof JWT for method and url, with ath when at is given.
  async function proof(method, url, at) {
    const k = await key(false)
    if (!k) return ''
    const u = new URL(url)
    u.search = u.hash = ''
    const c = { jti: rid(), htm: method, htu: u.href, iat: Math.floor((now() + skew) / 1000) }
    if (at) c.ath = b64(await subtle.digest('SHA-256', enc(at)))
    if (nonces[u.origin]) c.nonce = nonces[u.origin]
    const s = b64j({ typ: 'dpop+jwt', alg: 'ES256', jwk: k.jwk }) + '.' + b64j(c)
    return s + '.' + b64(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, k.pair.privateKey, enc(s)))
  }

  function clock(res) {
    const d = Date.parse(res.headers.get('Date'))
    if (d) skew = Math.abs(d - now()) > 10000 ? d - now() : 0
  }

  // ---- Requests -------------------------------------------------------------

  // attempt sends req once, or twice when the server asks for a DPoP nonce.
  // o: token (the AT to present), proof (send a DPoP proof), cookie (cookie
  // mode's headers), replay (req's body may be sent again).
  async function attempt(req, o) {
    for (let i = 0; ; i++) {
      const h = new Headers(req.headers)
      if (o.cookie) {
        h.set('X-Sessiond-Cookie', '1')
        h.set('X-Sessiond-CSRF', '1')
      }
      const p = o.proof ? await proof(req.method, req.url, o.token) : ''
      if (o.token) h.set('Authorization', (p ? 'DPoP ' : 'Bearer ') + o.token)
      if (p) h.set('DPoP', p)
      const res = await fetchFn(new Request(o.replay ? req.clone() : req, { headers: h }))
      const n = res.headers.get('DPoP-Nonce')
      if (n) nonces[new URL(req.url).origin] = n
      if (!i && p && n && o.replay && (res.status === 400 || res.status === 401) && (await codeOf(res)) === 'use_dpop_nonce') continue
      return res
    }
  }

  // getToken is a usable AT ('' when signed out), refreshed first when due.
  async function getToken() {
    if (state === 'unknown') await restore().catch(() => {})
    if (tok && !fresh()) {
      const p = refresh(tok.at)
      if (now() >= tok.exp - 1000) await p
    }
    return tok ? tok.at : ''
  }

  // authFetch is fetch with the AT: for sessiond and tokenOrigins only.
  async function authFetch(input, init) {
    const req = new Request(input, init)
    const own = req.url.startsWith(base + '/')
    if (!own && !origins.includes(new URL(req.url).origin)) return fetchFn(input, init)
    const replay = !(init && g.ReadableStream && init.body instanceof g.ReadableStream)
    const dpop = own || (init && 'dpop' in init ? init.dpop : options.dpop)
    const go = (t) => attempt(req, { token: t, proof: t && dpop && tok && tok.type === 'DPoP', replay })
    const t = await getToken()
    let res = await go(t)
    // A refused AT is refreshed once and the request sent once more; a 401
    // about anything else (a wrong password) is the answer.
    if (res.status === 401 && t && replay && ['', 'invalid_token'].includes(await codeOf(res))) {
      await refresh(t)
      if (tok && tok.at !== t) res = await go(tok.at)
    }
    return res
  }

  // api calls a sessiond endpoint: auth (with the AT), cookie (cookie mode
  // and a DPoP proof: login, refresh, logout).
  async function api(method, path, body, o = {}) {
    const init = { method, credentials: 'include', cache: 'no-store', headers: {} }
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json'
      init.body = JSON.stringify(body)
    }
    let res
    try {
      res = o.auth ? await authFetch(base + path, init) : await attempt(new Request(base + path, init), { cookie: o.cookie, proof: o.cookie, replay: 1 })
    } catch (e) {
      throw new SessiondError(0, { code: 'network', detail: String((e && e.message) || e) })
    }
    clock(res)
    const data = res.status === 204 ? null : await res.json().catch(() => null)
    if (!res.ok) throw new SessiondError(res.status, data, retryAfter(res))
    return data
  }
  const authed = (method, path, body) => api(method, path, body, { auth: 1 })

  async function login(path, body, reason) {
    await key(true)
    const t = await api('POST', path, body, { cookie: 1 })
    signedIn(t, reason)
    return { mfaRequired: false, sessionId: t.session_id, tokenType: tok.type }
  }

  // ---- Passkeys -------------------------------------------------------------

  const PKC = () => g.PublicKeyCredential
  async function assertion(begun) {
    const cred = await nav.credentials.get({ publicKey: PKC().parseRequestOptionsFromJSON(begun.options) })
    return { challenge_id: begun.challenge_id, credential: cred.toJSON() }
  }

  // ---- The client -----------------------------------------------------------

  function restore() {
    return restoring || (restoring = (async () => {
      if (!tok && ch) await ask(0)
      if (!fresh()) await refresh(tok ? tok.at : '')
      if (state === 'unknown') throw lastError || new SessiondError(0, { code: 'network' })
      return state
    })().finally(() => { restoring = null }))
  }

  async function end(reason, path) {
    try { await api('POST', path || '/v1/logout', undefined, { cookie: 1 }) } catch (e) { /* the cookie is cleared either way */ }
    await dropKey()
    signedOut(reason, true)
  }

  let mfaToken = ''

  return {
    get state() { return state },
    get sessionId() { return tok ? tok.sid : '' },
    get tokenType() { return tok ? tok.type : '' },
    passkeysSupported: !!(PKC() && PKC().parseRequestOptionsFromJSON && PKC().parseCreationOptionsFromJSON),
    onChange(f) {
      listeners.add(f)
      return () => listeners.delete(f)
    },
    restore,
    getToken,
    fetch: authFetch,
    request: authed,

    signUp: ({ email, password }) => api('POST', '/v1/signup', { email, password }),
    async signIn({ email, password }) {
      try {
        return await login('/v1/login', { email, password }, 'signIn')
      } catch (e) {
        if (e.code !== 'mfa_required') throw e
        mfaToken = e.problem.mfa_token
        return { mfaRequired: true, mfaToken, methods: e.problem.methods || ['totp', 'recovery_code'] }
      }
    },
    async completeMfa(f) {
      const t = f.mfaToken || mfaToken
      let body = { mfa_token: t }
      if (f.code) body.code = f.code
      else if (f.recoveryCode) body.recovery_code = f.recoveryCode
      else if (f.credential) Object.assign(body, { challenge_id: f.challengeId, credential: f.credential })
      else if (f.passkey) Object.assign(body, await assertion(await api('POST', '/v1/login/passkey/begin', { mfa_token: t })))
      const r = await login('/v1/login/mfa', body, 'signIn')
      mfaToken = ''
      return r
    },
    async signInWithPasskey() {
      return login('/v1/login/passkey/finish', await assertion(await api('POST', '/v1/login/passkey/begin')), 'signIn')
    },
    signOut: () => end('signOut'),
    async signOutEverywhere() {
      await authed('POST', '/v1/logout-all')
      await end('signOutEverywhere')
    },
    async deleteAccount({ password }) {
      await authed('DELETE', '/v1/me', { password })
      await end('accountDeleted')
    },

    me: () => authed('GET', '/v1/me'),
    sessions: async () => (await authed('GET', '/v1/sessions')).sessions,
    endSession: (sid) => authed('DELETE', '/v1/sessions/' + encodeURIComponent(sid)),

    forgotPassword: ({ email }) => api('POST', '/v1/password/forgot', { email }),
    resetPassword: ({ token, newPassword }) => api('POST', '/v1/password/reset', { token, new_password: newPassword }),
    verifyEmail: ({ token }) => api('POST', '/v1/email/verify', { token }),
    resendVerification: () => authed('POST', '/v1/email/verify/resend'),
    changePassword: ({ currentPassword, newPassword }) => authed('POST', '/v1/password', { current_password: currentPassword, new_password: newPassword }),
    changeEmail: ({ password, newEmail }) => authed('POST', '/v1/email', { password, new_email: newEmail }),
    async reauthenticate(p) {
      if (p.passkey) p = await assertion(await authed('POST', '/v1/passkeys/reauthenticate/begin'))
      return authed('POST', '/v1/reauthenticate', p)
    },

    mfa: () => authed('GET', '/v1/mfa'),
    enrollTotp: () => authed('POST', '/v1/mfa/totp'),
    confirmTotp: ({ code }) => authed('POST', '/v1/mfa/totp/confirm', { code }),
    disableTotp: (p) => authed('DELETE', '/v1/mfa/totp', p),
    regenerateRecoveryCodes: (p) => authed('POST', '/v1/mfa/recovery-codes', p),

    passkeys: async () => (await authed('GET', '/v1/passkeys')).passkeys,
    async addPasskey({ name } = {}) {
      const begun = await authed('POST', '/v1/passkeys/register/begin')
      const cred = await nav.credentials.create({ publicKey: PKC().parseCreationOptionsFromJSON(begun.options) })
      const body = { challenge_id: begun.challenge_id, credential: cred.toJSON() }
      if (name) body.name = name
      return authed('POST', '/v1/passkeys/register/finish', body)
    },
    renamePasskey: (pid, { name }) => authed('PATCH', '/v1/passkeys/' + encodeURIComponent(pid), { name }),
    removePasskey: (pid) => authed('DELETE', '/v1/passkeys/' + encodeURIComponent(pid)),

    close() {
      clearT(timer)
      listeners.clear()
      if (ch) ch.close()
      ch = null
    },
  }
}
